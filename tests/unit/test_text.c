/*
 * test_text.c - normalisation, IBAN, Luhn, e-mail, phone, order numbers and
 * tone (core/text.c).
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "text.h"

static const char *norm(const char *s)
{
    static char buf[1024];
    text_normalize(s, strlen(s), buf, sizeof buf);
    return buf;
}

static bool has(const char *text, const char *phrase)
{
    char t[512], p[256];
    size_t tn = text_normalize(text, strlen(text), t, sizeof t);
    size_t pn = text_phrase_prepare(phrase, strlen(phrase), p, sizeof p);
    return text_has_phrase(t, tn, p, pn);
}

/* All matches of one kind, joined by '|'. */
static const char *found(const char *s, enum text_kind kind)
{
    static char out[1024];
    struct text_match m[16];
    size_t n = text_find_sensitive(s, strlen(s), m, 16);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (m[i].kind != kind)
            continue;
        size_t o = strlen(out);
        snprintf(out + o, sizeof out - o, "%s%s", o ? "|" : "", m[i].value);
    }
    return out;
}

static void test_normalize(void)
{
    CHECK_STR(norm("Hallo, Welt!"), "hallo welt",
              "normalize: case and punctuation");
    CHECK_STR(norm("  Öffnungszeiten   am  Sonntag?? "),
              "oeffnungszeiten am sonntag",
              "normalize: umlaut, whitespace collapsed, trimmed");
    CHECK_STR(norm("ÄÖÜ äöü ß ẞ"), "aeoeue aeoeue ss ss",
              "normalize: umlauts incl. capitals");
    CHECK_STR(norm("Straße GRÜSSE"), "strasse gruesse", "normalize: sharp s");
    CHECK_STR(norm("Café crème, garçon, señor, Łódź, Ærø"),
              "cafe creme garcon senor lodz aero",
              "normalize: Latin accents folded");
    CHECK_STR(norm("u\xCC\x88"
                   "ber a\xCC\x80"),
              "ueber a", "normalize: decomposed umlaut and accent");
    CHECK_STR(norm("don't geht’s"), "dont gehts",
              "normalize: apostrophes join");
    CHECK_STR(norm("E-Mail: a@b.de — 9–18 Uhr…"), "e mail a b de 9 18 uhr",
              "normalize: dashes, ellipsis, @ are separators");
    CHECK_STR(norm("Danke 😀👍!"), "danke", "normalize: emoji are separators");
    CHECK_STR(norm("ПРИВЕТ Ωμέγα"), "привет ωμέγα",
              "normalize: Cyrillic and Greek lowercased");
    CHECK_STR(norm("ＡＢＣ１２"), "abc12", "normalize: fullwidth ASCII");
    CHECK_STR(norm("a\xFF\xFE"
                   "b"),
              "a b", "normalize: invalid UTF-8 is a separator");
    CHECK_STR(norm(""), "", "normalize: empty");
    CHECK_STR(norm("?!... "), "", "normalize: only punctuation");
    char small[6];
    text_normalize("Öffnungszeiten", 15, small, sizeof small);
    CHECK_STR(small, "oeffn", "normalize: cut to the buffer, NUL-terminated");
    const char *u = "Ärger";
    char exact[7];
    size_t n = text_normalize(u, strlen(u), exact, strlen(u) + 1);
    CHECK(n == 6 && strcmp(exact, "aerger") == 0,
          "normalize: len+1 always suffices");
}

static void test_has_phrase(void)
{
    CHECK(has("Wann habt ihr geöffnet?", "geöffnet"), "has: umlaut variants");
    CHECK(has("Wann habt ihr geoeffnet?", "geöffnet"),
          "has: spelled-out umlaut");
    CHECK(has("What are your opening hours?", "Opening Hours"),
          "has: two words");
    CHECK(!has("reopening hours", "opening hours"), "has: whole words only");
    CHECK(!has("opening", "opening hours"), "has: text shorter than phrase");
    CHECK(has("Die Öffnungszeiten bitte", "öffnungszeit*"), "has: prefix star");
    CHECK(!has("Die Zeit bitte", "öffnungszeit*"),
          "has: prefix star, no match");
    CHECK(has("kein passwort mehr", "passwort"), "has: single word");
}

static void test_iban(void)
{
    const char *de = "DE89 3704 0044 0532 0130 00";
    CHECK(text_is_iban(de, strlen(de)), "iban: DE with spaces");
    CHECK(text_is_iban("DE89370400440532013000", 22), "iban: DE compact");
    CHECK(text_is_iban(" de89370400440532013000 ", 24),
          "iban: lower case, blanks around");
    CHECK(text_is_iban("GB82 WEST 1234 5698 7654 32", 27),
          "iban: GB with letters");
    CHECK(text_is_iban("AT611904300234573201", 20), "iban: AT");
    CHECK(text_is_iban("CH9300762011623852957", 21), "iban: CH");
    CHECK(text_is_iban("FR1420041010050500013M02606", 27), "iban: FR");
    CHECK(text_is_iban("NL91ABNA0417164300", 18), "iban: NL");
    CHECK(!text_is_iban("DE89 3704 0044 0532 0130 01", 27),
          "iban: wrong check sum");
    CHECK(!text_is_iban("DE88370400440532013000", 22),
          "iban: wrong check digits");
    CHECK(!text_is_iban("DE8937040044053201300", 21), "iban: too short for DE");
    CHECK(!text_is_iban("DE893704004405320130000", 23),
          "iban: too long for DE");
    CHECK(!text_is_iban("XX89370400440532013000", 22), "iban: unknown country");
    CHECK(!text_is_iban("DE89  3704 0044 0532 0130 00", 28),
          "iban: double space");
    CHECK(text_iban_length("de") == 22 && text_iban_length("NO") == 15 &&
              text_iban_length("ZZ") == 0,
          "iban: country lengths");

    CHECK_STR(found("Ich will mein Geld zurück, meine IBAN ist DE89 3704 0044 "
                    "0532 0130 00.",
                    TEXT_IBAN),
              "DE89370400440532013000", "iban: found in a sentence, compacted");
    CHECK_STR(found("IBAN:DE89370400440532013000 und AT611904300234573201",
                    TEXT_IBAN),
              "DE89370400440532013000|AT611904300234573201",
              "iban: two in one text");
    CHECK_STR(found("xDE89370400440532013000", TEXT_IBAN), "",
              "iban: not inside a word");
    CHECK_STR(found("DE89 3704 0044 0532 0130 00 123", TEXT_IBAN),
              "DE89370400440532013000", "iban: followed by another number");
    CHECK_STR(found("DE89 3704 0044 0532 0130 00", TEXT_PHONE), "",
              "iban: its digits are not a phone number");
}

static void test_card(void)
{
    CHECK(text_is_card("4111 1111 1111 1111", 19),
          "card: Visa test number with spaces");
    CHECK(text_is_card("5555-5555-5555-4444", 19),
          "card: Mastercard with dashes");
    CHECK(text_is_card("378282246310005", 15), "card: Amex compact");
    CHECK(!text_is_card("4111 1111 1111 1112", 19), "card: Luhn fails");
    CHECK(!text_is_card("4111 1111 111", 13), "card: too short");
    CHECK(!text_is_card("4111x1111 1111 1111", 19), "card: bad character");
    CHECK_STR(
        found("Meine Karte: 4111 1111 1111 1111, gültig bis 12/27", TEXT_CARD),
        "4111111111111111", "card: found in a sentence");
    CHECK_STR(found("Bestellung 4111111111111112", TEXT_CARD), "",
              "card: Luhn-invalid digits are no card");
    CHECK_STR(found("Bestellnummer 1234567890123452", TEXT_CARD), "",
              "card: first digit 1 is no payment card");
    CHECK_STR(found("12 4111 1111 1111 1111", TEXT_CARD), "4111111111111111",
              "card: starts at a later digit group");
}

static void test_email(void)
{
    CHECK_STR(
        found("Schreib an Max.Mustermann+shop@Example.COM bitte.", TEXT_EMAIL),
        "Max.Mustermann+shop@example.com",
        "email: found, domain lowercased, dot trimmed");
    CHECK_STR(found("@support kannst du helfen?", TEXT_EMAIL), "",
              "email: a handle is no e-mail");
    CHECK_STR(found("a@b", TEXT_EMAIL), "", "email: needs a dotted domain");
    CHECK_STR(found("x@y.c1", TEXT_EMAIL), "", "email: TLD must be letters");
    CHECK_STR(found("mail: anna@mail.example.org, bob@x.io", TEXT_EMAIL),
              "anna@mail.example.org|bob@x.io", "email: two");
}

static void test_phone(void)
{
    CHECK_STR(found("Ruf mich an: +49 171 1234567", TEXT_PHONE),
              "+491711234567", "phone: international");
    CHECK_STR(found("Tel. +49 (0) 30 1234-5678", TEXT_PHONE), "+493012345678",
              "phone: (0) after the country code dropped");
    CHECK_STR(found("0049 30 12345678", TEXT_PHONE), "+493012345678",
              "phone: 00 prefix");
    CHECK_STR(found("unter 0171/1234567 erreichbar", TEXT_PHONE), "01711234567",
              "phone: national with slash");
    CHECK_STR(found("(030) 123 456 78", TEXT_PHONE), "03012345678",
              "phone: area code in ()");
    CHECK_STR(found("Bestellung 12345678", TEXT_PHONE), "",
              "phone: bare digits are not a phone");
    CHECK_STR(found("Bestellnummer: 0012345678", TEXT_PHONE), "",
              "phone: digits after an order word are not a phone");
    CHECK_STR(found("am 01.02.2024 um 10:30", TEXT_PHONE), "",
              "phone: a date is not a phone");
    CHECK_STR(found("Preis 0,99 EUR", TEXT_PHONE), "",
              "phone: a price is not a phone");
    CHECK_STR(found("+49 12", TEXT_PHONE), "", "phone: too short");
}

static void test_order(void)
{
    char out[40];
    CHECK(text_order_number("Wo ist meine Bestellung 12345678?", 33, out,
                            sizeof out) &&
              strcmp(out, "12345678") == 0,
          "order: after Bestellung");
    const char *s = "Bestell-Nr.: AB-2024-0042 kam nicht an";
    CHECK(text_order_number(s, strlen(s), out, sizeof out) &&
              strcmp(out, "AB-2024-0042") == 0,
          "order: Bestell-Nr. with letters and dashes");
    s = "my order no. 99812 is late";
    CHECK(text_order_number(s, strlen(s), out, sizeof out) &&
              strcmp(out, "99812") == 0,
          "order: English, filler word");
    s = "see #45123";
    CHECK(text_order_number(s, strlen(s), out, sizeof out) &&
              strcmp(out, "45123") == 0,
          "order: #number");
    s = "Ich bin 1990 geboren";
    CHECK(!text_order_number(s, strlen(s), out, sizeof out),
          "order: no keyword, no order number");
    s = "Rechnung an DE89370400440532013000";
    CHECK(!text_order_number(s, strlen(s), out, sizeof out),
          "order: an IBAN is no order number");
}

static void test_tone(void)
{
    const char *angry[] = {
        "Das ist eine Frechheit, ich warte seit Wochen!!!",
        "WO IST MEINE BESTELLUNG??? ICH WARTE SCHON EWIG",
        "This is a scam, worst service ever",
        "Ich bin echt nicht zufrieden, total enttäuscht und wütend",
    };
    for (size_t i = 0; i < sizeof angry / sizeof angry[0]; i++) {
        double t = text_tone(angry[i], strlen(angry[i]));
        char name[120];
        snprintf(name, sizeof name, "tone: angry %zu (%.2f) <= -0.5", i, t);
        CHECK(t <= -0.5 && t >= -1, name);
    }
    const char *neutral = "Wann habt ihr morgen geöffnet?";
    CHECK(text_tone(neutral, strlen(neutral)) == 0,
          "tone: neutral question is 0");
    const char *happy = "Vielen Dank, super Service!!!";
    CHECK(text_tone(happy, strlen(happy)) > 0.3,
          "tone: thanks are positive, !!! does not hurt");
    const char *neg = "not happy";
    CHECK(text_tone(neg, strlen(neg)) < 0, "tone: negation flips praise");
    const char *acro = "Ist die IBAN für DHL richtig?";
    CHECK(text_tone(acro, strlen(acro)) == 0,
          "tone: acronyms are not shouting");
    CHECK(text_tone("", 0) == 0, "tone: empty");
}

int main(void)
{
    test_normalize();
    test_has_phrase();
    test_iban();
    test_card();
    test_email();
    test_phone();
    test_order();
    test_tone();
    return CHECK_DONE();
}
