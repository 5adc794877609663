/*
 * RFC 3339 date-times for `--at`: the exact grammar of RFC 3339 section 5.6,
 * read character by character, and converted to a time_t without the C
 * library's time zone machinery (timegm is not standard and mktime reads TZ).
 */
#include "ctl.h"

#include <stdint.h>

/* Reads exactly n digits at *s, advancing it. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*s)[i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

static int expect(const char **s, char a, char b)
{
    if (**s != a && **s != b)
        return -1;
    (*s)++;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date: count whole 400-year
 * eras, then days inside the era with the year starting on March 1st so
 * that the leap day is the era-year's last day. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int ctl_parse_rfc3339(const char *s, time_t *out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    int64_t t;

    if (digits(&s, 4, &y) || expect(&s, '-', '-') || digits(&s, 2, &mo) || expect(&s, '-', '-') ||
        digits(&s, 2, &d) || expect(&s, 'T', 't') || digits(&s, 2, &h) || expect(&s, ':', ':') ||
        digits(&s, 2, &mi) || expect(&s, ':', ':') || digits(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        s++;
        if (digits(&s, 2, &oh) || expect(&s, ':', ':') || digits(&s, 2, &om))
            return -1;
    } else {
        return -1;
    }
    if (*s != '\0')
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 ||
        oh > 23 || om > 59)
        return -1;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    /* The local time is UTC plus the offset, so UTC is local minus it. */
    t -= (int64_t)sign * (oh * 3600 + om * 60);
    *out = (time_t)t;
    return 0;
}
