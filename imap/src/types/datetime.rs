//! Dates of SEARCH (`date`) and INTERNALDATE / APPEND (`date-time`) — RFC 3501 §9.
//!
//! Invariant: every value is a real calendar date (leap years included) with hours,
//! minutes, seconds and zone in range, so it always encodes to a valid `date-time`.

use super::core::ValidationError;

pub(crate) const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `date-text = date-day "-" date-month "-" date-year` — RFC 3501 §9
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// `year` has four digits (`date-year = 4DIGIT`), `month` is 1–12.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, ValidationError> {
        if year > 9999 || !(1..=12).contains(&month) || day == 0 {
            return Err(ValidationError::OutOfRange);
        }
        if day > days_in_month(year, month) {
            return Err(ValidationError::OutOfRange);
        }
        Ok(Self { year, month, day })
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    pub fn day(self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01 (negative before), for comparing with stored dates.
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year =
            (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01; `None` outside years 0–9999.
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Self::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
        .ok()
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
/// DQUOTE` — RFC 3501 §9
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    /// Offset from UTC in minutes (`zone = ("+" / "-") 4DIGIT`).
    zone_minutes: i16,
}

/// Largest zone offset `("+" / "-") 4DIGIT` can write: -9959 .. +9959.
const ZONE_MINUTES_MAX: i16 = 99 * 60 + 59;

impl DateTime {
    /// `second` may be 60 (a leap second); `zone_minutes` is the offset from UTC.
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Result<Self, ValidationError> {
        if hour > 23 || minute > 59 || second > 60 || zone_minutes.abs() > ZONE_MINUTES_MAX {
            return Err(ValidationError::OutOfRange);
        }
        Ok(Self {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }

    /// The local time `zone_minutes` east of UTC for a Unix timestamp.
    pub fn from_unix_seconds(seconds: i64, zone_minutes: i16) -> Option<Self> {
        let local = seconds.checked_add(i64::from(zone_minutes) * 60)?;
        let date = Date::from_days_since_epoch(local.div_euclid(86_400))?;
        let of_day = local.rem_euclid(86_400);
        Self::new(
            date,
            u8::try_from(of_day / 3600).ok()?,
            u8::try_from(of_day / 60 % 60).ok()?,
            u8::try_from(of_day % 60).ok()?,
            zone_minutes,
        )
        .ok()
    }

    /// Seconds since the Unix epoch (UTC).
    pub fn to_unix_seconds(self) -> i64 {
        self.date.days_since_epoch() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.zone_minutes) * 60
    }

    pub fn date(self) -> Date {
        self.date
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }

    pub fn second(self) -> u8 {
        self.second
    }

    pub fn zone_minutes(self) -> i16 {
        self.zone_minutes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_checks() {
        assert!(Date::new(2024, 2, 29).is_ok());
        assert!(Date::new(2023, 2, 29).is_err());
        assert!(Date::new(1900, 2, 29).is_err());
        assert!(Date::new(2000, 2, 29).is_ok());
        assert!(Date::new(2024, 4, 31).is_err());
        assert!(Date::new(2024, 13, 1).is_err());
    }

    #[test]
    fn unix_round_trip() {
        let date_time = DateTime::from_unix_seconds(1_700_000_000, 60).unwrap();
        assert_eq!(date_time.to_unix_seconds(), 1_700_000_000);
        assert_eq!(date_time.date(), Date::new(2023, 11, 14).unwrap());
        assert_eq!(date_time.hour(), 23);
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        for days in [-719_000, -1, 0, 59, 11_016, 2_932_896] {
            let date = Date::from_days_since_epoch(days).unwrap();
            assert_eq!(date.days_since_epoch(), days);
        }
    }
}
