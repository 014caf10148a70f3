#!/usr/bin/env python3
"""A real DNS server (dnslib) answering from a zone file, for the relay's MX lookups
in tests.

Usage: dns.py PORT ZONE_FILE

The zone file is in master-file format (RFC 1035 §5), one record per line with
absolute names. A name with no record at all gets NXDOMAIN; a name with records, but
none of the type asked, an empty answer (NOERROR).
"""
import os
import sys
import time

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class Zone(BaseResolver):
    def __init__(self, text):
        self.records = RR.fromZone(text)

    def resolve(self, request, handler):
        reply = request.reply()
        name, qtype = request.q.qname, request.q.qtype
        known = False
        for rr in self.records:
            if rr.rname == name:
                known = True
                if rr.rtype == qtype:
                    reply.add_answer(rr)
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


with open(sys.argv[2]) as f:
    zone = Zone(f.read())
# Quiet: whoever started us reads only the READY line.
quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
server = DNSServer(zone, port=int(sys.argv[1]), address="127.0.0.1", logger=quiet)
server.start_thread()
print("READY", flush=True)
sys.stdout = open(os.devnull, "w")
while True:
    time.sleep(3600)
