//! Sequence sets — RFC 3501 §6.4.8 and §9.
//!
//! Invariant: a [`SequenceSet`] holds at least one element and every number in it is
//! non-zero, or it is `$` ([`SequenceSet::saved`], RFC 5182), which holds none. `*`
//! and reversed ranges are kept as the client wrote them (so a command re-encodes the
//! same); [`SequenceSet::ranges`] gives the normalized meaning.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use super::core::ValidationError;

/// `seq-number = nz-number / "*"` — RFC 3501 §9
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeqOrUid {
    Value(NonZeroU32),
    /// The largest number in use (RFC 3501 §9: "*" represents the largest number in
    /// use").
    Asterisk,
}

impl SeqOrUid {
    /// The number this stands for when `largest` is the largest number in use.
    pub fn resolve(self, largest: u32) -> u32 {
        match self {
            Self::Value(value) => value.get(),
            Self::Asterisk => largest,
        }
    }
}

/// `seq-number / seq-range` — RFC 3501 §9
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sequence {
    Single(SeqOrUid),
    /// `seq-range = seq-number ":" seq-number`; RFC 3501 §9: "2:4 and 4:2 are
    /// equivalent".
    Range(SeqOrUid, SeqOrUid),
}

impl Sequence {
    /// The inclusive range this element covers, low end first.
    pub fn resolve(self, largest: u32) -> RangeInclusive<u32> {
        match self {
            Self::Single(single) => {
                let value = single.resolve(largest);
                value..=value
            }
            Self::Range(from, to) => {
                let (from, to) = (from.resolve(largest), to.resolve(largest));
                from.min(to)..=from.max(to)
            }
        }
    }
}

/// `sequence-set = (seq-number / seq-range) *("," sequence-set)` — RFC 3501 §9;
/// `sequence-set =/ seq-last-command`, `seq-last-command = "$"` — RFC 5182 §2.1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SequenceSet(Vec<Sequence>);

impl SequenceSet {
    /// `$`: the messages the last `SEARCH RETURN (SAVE)` found (RFC 5182 §2.1). Its
    /// meaning is the session's; it has no elements and contains no number here.
    pub fn saved() -> Self {
        Self(Vec::new())
    }

    /// Whether this is `$`.
    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }

    /// A set from elements; refuses an empty list.
    pub fn new(elements: Vec<Sequence>) -> Result<Self, ValidationError> {
        if elements.is_empty() {
            return Err(ValidationError::Empty);
        }
        Ok(Self(elements))
    }

    /// A set holding one number.
    pub fn single(value: NonZeroU32) -> Self {
        Self(vec![Sequence::Single(SeqOrUid::Value(value))])
    }

    /// A set of one range `from:to`.
    pub fn range(from: SeqOrUid, to: SeqOrUid) -> Self {
        Self(vec![Sequence::Range(from, to)])
    }

    /// A set from (already sorted or not) numbers, compressed into ranges; `None`
    /// when `values` holds no non-zero number.
    pub fn from_values(values: &[u32]) -> Option<Self> {
        let mut sorted: Vec<u32> = values.iter().copied().filter(|&v| v != 0).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut elements = Vec::new();
        let mut index = 0;
        while index < sorted.len() {
            let start = sorted[index];
            let mut end = start;
            while index + 1 < sorted.len() && sorted[index + 1] == end + 1 {
                index += 1;
                end = sorted[index];
            }
            let (from, to) = (NonZeroU32::new(start)?, NonZeroU32::new(end)?);
            elements.push(if start == end {
                Sequence::Single(SeqOrUid::Value(from))
            } else {
                Sequence::Range(SeqOrUid::Value(from), SeqOrUid::Value(to))
            });
            index += 1;
        }
        Self::new(elements).ok()
    }

    pub fn elements(&self) -> &[Sequence] {
        &self.0
    }

    /// Whether `value` is in the set when `largest` is the largest number in use.
    pub fn contains(&self, value: u32, largest: u32) -> bool {
        self.0
            .iter()
            .any(|element| element.resolve(largest).contains(&value))
    }

    /// The set as sorted, disjoint, non-adjacent inclusive ranges, `*` resolved to
    /// `largest`. Never expands ranges, so `1:4294967295` costs one element.
    pub fn ranges(&self, largest: u32) -> Vec<RangeInclusive<u32>> {
        let mut ranges: Vec<RangeInclusive<u32>> = self
            .0
            .iter()
            .map(|element| element.resolve(largest))
            .collect();
        ranges.sort_unstable_by_key(|range| *range.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if *range.start() <= last.end().saturating_add(1) => {
                    if range.end() > last.end() {
                        *last = *last.start()..=*range.end();
                    }
                }
                _ => merged.push(range),
            }
        }
        merged
    }
}

fn parse_seq_number(text: &str) -> Result<SeqOrUid, ValidationError> {
    if text == "*" {
        return Ok(SeqOrUid::Asterisk);
    }
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ValidationError::OutOfRange);
    }
    let value: u32 = text.parse().map_err(|_| ValidationError::OutOfRange)?;
    NonZeroU32::new(value)
        .map(SeqOrUid::Value)
        .ok_or(ValidationError::OutOfRange)
}

impl TryFrom<&str> for SequenceSet {
    type Error = ValidationError;
    fn try_from(text: &str) -> Result<Self, Self::Error> {
        let mut elements = Vec::new();
        for element in text.split(',') {
            elements.push(match element.split_once(':') {
                Some((from, to)) => Sequence::Range(parse_seq_number(from)?, parse_seq_number(to)?),
                None => Sequence::Single(parse_seq_number(element)?),
            });
        }
        Self::new(elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_ranges_and_asterisk() {
        let set = SequenceSet::try_from("4:2,7,*:9").unwrap();
        assert_eq!(set.ranges(12), vec![2..=4, 7..=7, 9..=12]);
        assert!(set.contains(3, 12));
        assert!(!set.contains(5, 12));
        // RFC 3501 §6.4.8: with largest 5, "9:*" is "5:9".
        assert_eq!(SequenceSet::try_from("9:*").unwrap().ranges(5), vec![5..=9]);
        assert_eq!(
            SequenceSet::try_from("1:3,2:6,7").unwrap().ranges(9),
            vec![1..=7]
        );
    }

    #[test]
    fn rejects_invalid() {
        for bad in ["", "0", "1:0", "1,", ",1", "a", "1:2:3", "4294967296", "+1"] {
            assert!(SequenceSet::try_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn saved_is_not_a_set_of_numbers() {
        let saved = SequenceSet::saved();
        assert!(saved.is_saved());
        assert!(saved.elements().is_empty() && saved.ranges(9).is_empty());
        assert!(!saved.contains(1, 9));
        assert!(!SequenceSet::try_from("1").unwrap().is_saved());
        assert!(SequenceSet::try_from("$").is_err());
    }

    #[test]
    fn from_values_compresses() {
        let set = SequenceSet::from_values(&[5, 1, 2, 3, 9, 10]).unwrap();
        assert_eq!(set, SequenceSet::try_from("1:3,5,9:10").unwrap());
        assert!(SequenceSet::from_values(&[]).is_none());
    }
}
