// Tests for timestamp parsing (unix seconds, ISO-8601 with offsets) and ISO-8601 output.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "util/time_parse.hpp"

namespace {

using ml::days_from_civil;
using ml::format_iso8601;
using ml::parse_timestamp;
using ml::TimeFormat;

// 2017-07-01T00:00:00Z; a widely published anchor (e.g. `date -u -d 2017-07-01 +%s`).
constexpr std::int64_t kJuly2017 = 1498867200;
constexpr std::int64_t kDay = 86400;

std::optional<std::int64_t> autop(const std::string& s) {
  return parse_timestamp(s, TimeFormat::kAuto);
}

TEST(TimeParseAnchors, KnownDates) {
  EXPECT_EQ(autop("1970-01-01"), 0);
  EXPECT_EQ(autop("2017-07-01"), kJuly2017);
  EXPECT_EQ(autop("2000-01-01"), 946684800);
  EXPECT_EQ(autop("2016-01-01"), 1451606400);
  EXPECT_EQ(autop("1900-01-01"), -2208988800LL);
  // Consecutive days differ by exactly one day, across month and year ends.
  EXPECT_EQ(*autop("2017-07-02") - *autop("2017-07-01"), kDay);
  EXPECT_EQ(*autop("2018-01-01") - *autop("2017-12-31"), kDay);
  // 2017 is not a leap year: 365 days.
  EXPECT_EQ(*autop("2018-01-01") - *autop("2017-01-01"), 365 * kDay);
  EXPECT_EQ(*autop("2017-01-01") - *autop("2016-01-01"), 366 * kDay);
}

TEST(TimeParseAnchors, DaysFromCivil) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(2017, 7, 1), kJuly2017 / kDay);
  // 2000 is a leap year (divisible by 400): Jan 31 + Feb 29 days after 2000-01-01.
  EXPECT_EQ(days_from_civil(2000, 3, 1) - days_from_civil(2000, 1, 1), 31 + 29);
  // 1900 is not (divisible by 100, not by 400).
  EXPECT_EQ(days_from_civil(1900, 3, 1) - days_from_civil(1900, 1, 1), 31 + 28);
}

TEST(TimeParseUnix, IntegersAndFloats) {
  EXPECT_EQ(autop("1498867200"), kJuly2017);
  EXPECT_EQ(autop("0"), 0);
  EXPECT_EQ(autop("  1498867200  "), kJuly2017);  // surrounding spaces are trimmed
  EXPECT_EQ(autop("+1498867200"), kJuly2017);
  EXPECT_EQ(autop("-86400"), -kDay);
  // Fractions are dropped, like the ISO parser drops fractional seconds.
  EXPECT_EQ(autop("1498867200.75"), kJuly2017);
  EXPECT_EQ(autop("1.4988672e9"), kJuly2017);
  EXPECT_EQ(parse_timestamp("1498867200", TimeFormat::kUnix), kJuly2017);
  EXPECT_EQ(parse_timestamp("1498867200.5", TimeFormat::kUnix), kJuly2017);
}

TEST(TimeParseUnix, NegativeFractionsRoundDownLikeIso) {
  // Dropping the fraction of 23:59:59.5 on the eve of the epoch gives -1; "-0.5" unix seconds is
  // the same instant and must land on the same whole second.
  EXPECT_EQ(autop("1969-12-31T23:59:59.5Z"), -1);
  EXPECT_EQ(parse_timestamp("-0.5", TimeFormat::kUnix), -1);
  EXPECT_EQ(parse_timestamp("-86400.25", TimeFormat::kUnix), -kDay - 1);
}

TEST(TimeParseUnix, Rejects) {
  for (const char* bad :
       {"", "   ", "abc", "12abc", "1.2.3", "nan", "inf", "-inf", "0x10", "+-5", "--5", "1e400"}) {
    EXPECT_EQ(parse_timestamp(bad, TimeFormat::kUnix), std::nullopt) << bad;
    EXPECT_EQ(autop(bad), std::nullopt) << bad;
  }
  // An explicit unix format does not accept ISO dates and vice versa.
  EXPECT_EQ(parse_timestamp("2017-07-01", TimeFormat::kUnix), std::nullopt);
  EXPECT_EQ(parse_timestamp("1498867200", TimeFormat::kIso8601), std::nullopt);
}

TEST(TimeParseIso, DateTimes) {
  const std::int64_t t = kJuly2017 + 12 * 3600 + 30 * 60 + 27;
  EXPECT_EQ(autop("2017-07-01T12:30:27"), t);
  EXPECT_EQ(autop("2017-07-01 12:30:27"), t);
  EXPECT_EQ(autop("2017-07-01T12:30"), t - 27);  // seconds are optional
  EXPECT_EQ(autop("2017-07-01 00:00:00"), kJuly2017);
  EXPECT_EQ(autop("2017-07-01T23:59:59"), kJuly2017 + kDay - 1);
  EXPECT_EQ(parse_timestamp("2017-07-01T12:30:27", TimeFormat::kIso8601), t);
}

TEST(TimeParseIso, FractionalSeconds) {
  const std::int64_t t = kJuly2017 + 12 * 3600 + 30 * 60 + 27;
  EXPECT_EQ(autop("2017-07-01T12:30:27.5"), t);
  EXPECT_EQ(autop("2017-07-01T12:30:27.999999"), t);
  EXPECT_EQ(autop("2017-07-01T12:30:27,25"), t);  // ISO allows a comma
  EXPECT_EQ(autop("2017-07-01T12:30:27.5Z"), t);
  EXPECT_EQ(autop("2017-07-01T12:30:27.5+02:00"), t - 2 * 3600);
  EXPECT_EQ(autop("2017-07-01T12:30:27."), std::nullopt);  // a dot needs digits
}

TEST(TimeParseIso, Offsets) {
  const std::int64_t t = kJuly2017 + 12 * 3600 + 30 * 60 + 27;
  EXPECT_EQ(autop("2017-07-01T12:30:27Z"), t);
  // Local time 12:30 at +02:00 is 10:30 UTC.
  EXPECT_EQ(autop("2017-07-01T12:30:27+02:00"), t - 2 * 3600);
  EXPECT_EQ(autop("2017-07-01T12:30:27+0200"), t - 2 * 3600);
  // Local time at -05:30 is 5.5 hours behind UTC.
  EXPECT_EQ(autop("2017-07-01T12:30:27-0530"), t + 5 * 3600 + 30 * 60);
  EXPECT_EQ(autop("2017-07-01T12:30:27-05:30"), t + 5 * 3600 + 30 * 60);
  EXPECT_EQ(autop("2017-07-01T00:00:00+00:00"), kJuly2017);
  // An offset can move the instant into the previous day.
  EXPECT_EQ(autop("2017-07-01T01:00:00+02:00"), kJuly2017 - 3600);
}

TEST(TimeParseIso, MalformedOffsetsRejected) {
  for (const char* bad :
       {"2017-07-01T12:30:27+2", "2017-07-01T12:30:27+02:0", "2017-07-01T12:30:27+02:00:00",
        "2017-07-01T12:30:27Z+01:00", "2017-07-01T12:30:27ZZ", "2017-07-01T12:30:27 +02:00",
        "2017-07-01T12:30:27+25:00", "2017-07-01T12:30:27+02:75", "2017-07-01T12:30:27UTC"})
    EXPECT_EQ(autop(bad), std::nullopt) << bad;
}

TEST(TimeParseIso, InvalidDatesRejected) {
  for (const char* bad : {"2017-02-30",
                          "2017-02-29",
                          "2017-13-01",
                          "2017-00-10",
                          "2017-04-31",
                          "2017-06-00",
                          "2017-07-32",
                          "1900-02-29",
                          "2017-7-1",
                          "2017/07/01",
                          "17-07-01",
                          "2017-07-01x",
                          "2017-07-01T",
                          "2017-07-01T12",
                          "2017-07-01T24:00:00",
                          "2017-07-01T12:60",
                          "2017-07-01T12:30:61",
                          "2017-07-01T1a:30",
                          "garbage",
                          "2017-07-01 12:30:27 extra"})
    EXPECT_EQ(autop(bad), std::nullopt) << bad;
}

TEST(TimeParseIso, LeapDays) {
  ASSERT_TRUE(autop("2016-02-29").has_value());
  EXPECT_EQ(autop("2016-02-29"), 1451606400 + (31 + 28) * kDay);
  EXPECT_EQ(*autop("2016-03-01") - *autop("2016-02-29"), kDay);
  EXPECT_EQ(autop("2017-02-29"), std::nullopt);
  EXPECT_TRUE(autop("2000-02-29").has_value());   // divisible by 400
  EXPECT_FALSE(autop("2100-02-29").has_value());  // divisible by 100 only
}

TEST(TimeParseFormat, KnownValues) {
  EXPECT_EQ(format_iso8601(0), "1970-01-01T00:00:00");
  EXPECT_EQ(format_iso8601(kJuly2017), "2017-07-01T00:00:00");
  EXPECT_EQ(format_iso8601(kJuly2017 + 45027), "2017-07-01T12:30:27");
  EXPECT_EQ(format_iso8601(-1), "1969-12-31T23:59:59");
  EXPECT_EQ(format_iso8601(-kDay), "1969-12-31T00:00:00");
  EXPECT_EQ(format_iso8601(-kDay - 1), "1969-12-30T23:59:59");
  EXPECT_EQ(format_iso8601(-2208988800LL), "1900-01-01T00:00:00");
  EXPECT_EQ(format_iso8601(1456704000), "2016-02-29T00:00:00");
}

// Any int64 is a valid unix cell; the extremes are the dates other tools (e.g. Go's time
// package) give for them. The smallest day's seconds once overflowed while flooring to whole
// days (inspect printed "292277026596-12-03T39:30:09" for -9223372036854775807).
TEST(TimeParseFormat, ExtremeSeconds) {
  EXPECT_EQ(format_iso8601(std::numeric_limits<std::int64_t>::min()),
            "-292277022657-01-27T08:29:52");
  EXPECT_EQ(format_iso8601(std::numeric_limits<std::int64_t>::min() + 1),
            "-292277022657-01-27T08:29:53");
  EXPECT_EQ(format_iso8601(std::numeric_limits<std::int64_t>::max()),
            "292277026596-12-04T15:30:07");
}

TEST(TimeParseFormat, RoundTrip) {
  for (std::int64_t t :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, kJuly2017, kJuly2017 + 45027,
        std::int64_t{-86399}, std::int64_t{-86400}, std::int64_t{-86401},
        std::int64_t{-2208988800LL}, std::int64_t{-2208988800LL + 12345}, std::int64_t{951782399},
        std::int64_t{4102444800LL}, std::int64_t{253402300799LL}}) {
    const std::string text = format_iso8601(t);
    EXPECT_EQ(parse_timestamp(text, TimeFormat::kIso8601), t) << text;
    EXPECT_EQ(autop(text + "Z"), t) << text;
  }
}

TEST(TimeParseUnits, ExplicitUnitsDivideAndRoundDown) {
  const std::int64_t t = kJuly2017 + 30;
  EXPECT_EQ(parse_timestamp("1498867230999", TimeFormat::kUnixMs), t);
  EXPECT_EQ(parse_timestamp("1498867230999999", TimeFormat::kUnixUs), t);
  EXPECT_EQ(parse_timestamp("1498867230999999999", TimeFormat::kUnixNs), t);
  EXPECT_EQ(parse_timestamp("1498867230999.9", TimeFormat::kUnixMs), t);  // a fraction of a ms
  EXPECT_EQ(parse_timestamp("1.49886723e12", TimeFormat::kUnixMs), t);
  // Before the epoch, like the ISO parser: -1 ms is in the second before 1970.
  EXPECT_EQ(parse_timestamp("-1", TimeFormat::kUnixMs), -1);
  EXPECT_EQ(parse_timestamp("-1000", TimeFormat::kUnixMs), -1);
  EXPECT_EQ(parse_timestamp("-1001", TimeFormat::kUnixMs), -2);
  for (TimeFormat f : {TimeFormat::kUnixMs, TimeFormat::kUnixUs, TimeFormat::kUnixNs}) {
    EXPECT_EQ(parse_timestamp("2017-07-01", f), std::nullopt);  // no ISO under a unix unit
    EXPECT_EQ(parse_timestamp("inf", f), std::nullopt);
    EXPECT_EQ(parse_timestamp("nan", f), std::nullopt);
  }
}

TEST(TimeParseUnits, AutoReadsEachMagnitudeInItsUnit) {
  struct Case {
    const char* text;
    ml::TimeReading reading;
  };
  const Case cases[] = {{"1498867230", ml::TimeReading::kUnixSeconds},
                        {"1498867230123", ml::TimeReading::kUnixMs},
                        {"1498867230123456", ml::TimeReading::kUnixUs},
                        {"1498867230123456789", ml::TimeReading::kUnixNs},
                        {"2017-07-01T00:00:30Z", ml::TimeReading::kIso8601}};
  for (const Case& c : cases) {
    const auto t = ml::parse_time(c.text, TimeFormat::kAuto);
    ASSERT_TRUE(t.has_value()) << c.text;
    EXPECT_EQ(t->seconds, kJuly2017 + 30) << c.text;
    EXPECT_EQ(t->reading, c.reading) << c.text;
  }
  // A plausible time after 1973-03-03 reads back at each scale: written in any unit it lies in
  // that unit's band of magnitudes, so auto never mistakes one unit for another.
  const std::int64_t march_1973 = days_from_civil(1973, 3, 4) * kDay;
  for (std::int64_t s : {march_1973, kJuly2017, ml::kPlausibleTimeEnd - 1}) {
    const std::string text = std::to_string(s);
    for (const char* zeros : {"", "000", "000000", "000000000"}) {
      const auto t = ml::parse_time(text + zeros, TimeFormat::kAuto);
      ASSERT_TRUE(t.has_value()) << text << zeros;
      EXPECT_EQ(t->seconds, s) << text << zeros;
    }
  }
}

TEST(TimeParseUnits, PlausibleRangeAndWhyATimeIsNot) {
  EXPECT_EQ(ml::kPlausibleTimeEnd, days_from_civil(2100, 1, 1) * kDay);
  EXPECT_TRUE(ml::plausible_time(0));
  EXPECT_FALSE(ml::plausible_time(-1));
  EXPECT_TRUE(ml::plausible_time(ml::kPlausibleTimeEnd - 1));
  EXPECT_FALSE(ml::plausible_time(ml::kPlausibleTimeEnd));

  // Milliseconds declared as seconds: the text names what it became and the unit that fits.
  const auto ms = ml::parse_time("1498867200000", TimeFormat::kUnix);
  ASSERT_TRUE(ms.has_value());
  EXPECT_FALSE(ml::plausible_time(ms->seconds));
  const std::string why = ml::implausible_time_text("1498867200000", *ms, TimeFormat::kUnix);
  EXPECT_NE(why.find("read as unix seconds is 49467-"), std::string::npos) << why;
  EXPECT_NE(why.find("outside the plausible range 1970-01-01 .. 2099-12-31"), std::string::npos)
      << why;
  EXPECT_NE(why.find("as unix milliseconds it is 2017-07-01T00:00:00"), std::string::npos) << why;
  EXPECT_NE(why.find("data.time_format = \"unix_ms\""), std::string::npos) << why;
  // A time no unit makes plausible gets no suggestion.
  const auto past = ml::parse_time("1850-01-01", TimeFormat::kAuto);
  ASSERT_TRUE(past.has_value());
  const std::string iso = ml::implausible_time_text("1850-01-01", *past, TimeFormat::kAuto);
  EXPECT_NE(iso.find("read as ISO-8601 date/time is 1850-01-01T00:00:00"), std::string::npos)
      << iso;
  EXPECT_EQ(iso.find("data.time_format"), std::string::npos) << iso;
}

TEST(TimeParseFormat, NameMapping) {
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("unix_ms"), TimeFormat::kUnixMs);
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("unix_us"), TimeFormat::kUnixUs);
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("unix_ns"), TimeFormat::kUnixNs);
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("unix"), TimeFormat::kUnix);
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("iso8601"), TimeFormat::kIso8601);
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("auto"), TimeFormat::kAuto);
  EXPECT_EQ(ml::enum_from_name<TimeFormat>("iso"), std::nullopt);
  EXPECT_EQ(ml::enum_name(TimeFormat::kIso8601), "iso8601");
}

}  // namespace

namespace {

TEST(TimeParseCivil, CivilFromDaysInvertsDaysFromCivilAcrossCenturies) {
  // Every day from 1600-01-01 to 2400-12-31: leap centuries (1600, 2000, 2400) and the skipped
  // ones (1700, 1800, 1900, 2100) all round-trip.
  const std::int64_t first = days_from_civil(1600, 1, 1), last = days_from_civil(2400, 12, 31);
  for (std::int64_t day = first; day <= last; ++day) {
    const ml::CivilDate date = ml::civil_from_days(day);
    ASSERT_EQ(days_from_civil(date.year, date.month, date.day), day) << day;
  }
  const ml::CivilDate leap = ml::civil_from_days(days_from_civil(2000, 2, 29));
  EXPECT_EQ(leap.year, 2000);
  EXPECT_EQ(leap.month, 2u);
  EXPECT_EQ(leap.day, 29u);
}

TEST(TimeParseCivil, StrictIsoDates) {
  EXPECT_EQ(ml::parse_iso_date("2017-07-01"), kJuly2017 / kDay);
  EXPECT_EQ(ml::parse_iso_date("1969-12-31"), -1);
  EXPECT_EQ(ml::parse_iso_date("2016-02-29"), days_from_civil(2016, 2, 29));
  for (const char* bad :
       {"2017-02-29", "2017-13-01", "2017-7-01", "2017-07-01T00:00", " 2017-07-01", "20170701", ""})
    EXPECT_FALSE(ml::parse_iso_date(bad).has_value()) << bad;
}

}  // namespace
