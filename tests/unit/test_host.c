/* test_host.c - the host services plugins rely on for security and text:
 * constant-time compare, HMAC-SHA256 verification (RFC 4231 vectors and the
 * Slack/Meta/Discourse shapes), random tokens, UTF-8-safe cuts, backoff. */
#include <string.h>

#include "check.h"
#include "host.h"

int main(void)
{
    const struct fd_host *h = host_services();
    CHECK(h->abi == FD_PLUGIN_ABI && h->size == sizeof *h, "host table carries ABI and size");

    CHECK(h->ct_equal("secret", "secret"), "ct_equal: equal");
    CHECK(!h->ct_equal("secret", "secreT"), "ct_equal: differs");
    CHECK(!h->ct_equal("secret", "secret2"), "ct_equal: a longer string differs");
    CHECK(!h->ct_equal("", "x") && !h->ct_equal(NULL, "x"), "ct_equal: empty and NULL");

    /* RFC 4231 test case 2 */
    const char *d2 = "what do ya want for nothing?";
    const char *m2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    CHECK(h->hmac_sha256_hex_ok("Jefe", d2, strlen(d2), m2), "HMAC-SHA256 RFC 4231 case 2");
    CHECK(h->hmac_sha256_hex_ok("Jefe", d2, strlen(d2),
                                "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843"),
          "HMAC accepts upper-case hex");
    CHECK(!h->hmac_sha256_hex_ok("Jefe", d2, strlen(d2) - 1, m2), "HMAC over other bytes fails");
    CHECK(!h->hmac_sha256_hex_ok("jefe", d2, strlen(d2), m2), "HMAC with another key fails");
    CHECK(!h->hmac_sha256_hex_ok("Jefe", d2, strlen(d2), "5bdc"), "a truncated MAC fails");
    CHECK(!h->hmac_sha256_hex_ok("Jefe", d2, strlen(d2), ""), "an empty MAC fails");
    /* Slack's documented example: v0:timestamp:body signed with the secret */
    const char *slack = "v0:1531420618:token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&"
                        "team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&"
                        "user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&"
                        "text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J"
                        "%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015."
                        "47445629121.803a0bc887a14d10d2c447fce8b6703c";
    CHECK(h->hmac_sha256_hex_ok("8f742231b10e8888abcd99yyyzzz85a5", slack, strlen(slack),
                                "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
          "Slack's documented v0 signature verifies");

    char tok[65];
    CHECK(h->random_hex(tok, 32) == 0 && strlen(tok) == 64 && strspn(tok, "0123456789abcdef") == 64,
          "random_hex gives hex");
    char tok2[65];
    h->random_hex(tok2, 32);
    CHECK(strcmp(tok, tok2) != 0, "random_hex differs between calls");

    const char *t = "Grüße aus Köln"; /* ü, ß, ö are 2 bytes each */
    size_t n = strlen(t);
    CHECK(h->text_cut(t, n, 100, FD_TEXT_BYTES) == n, "text_cut: a short text stays whole");
    CHECK(h->text_cut(t, n, 3, FD_TEXT_BYTES) == 2, "text_cut: 3 bytes end before the ü");
    CHECK(h->text_cut(t, n, 4, FD_TEXT_BYTES) == 4, "text_cut: never splits a character");
    CHECK(h->text_cut(t, n, 5, FD_TEXT_CHARS) == 7, "text_cut: 5 characters are 7 bytes");
    CHECK(h->text_cut(t, n, 12, FD_TEXT_CHARS) == 12, "text_cut: prefers a break at a space");
    const char *emoji = "ab\xF0\x9F\x98\x80" "cd";
    CHECK(h->text_cut(emoji, strlen(emoji), 3, FD_TEXT_UTF16) == 2,
          "text_cut: an emoji counts 2 UTF-16 units");
    CHECK(h->text_cut(emoji, strlen(emoji), 3, FD_TEXT_CHARS) == 6,
          "text_cut: an emoji is one character");
    CHECK(h->text_cut("\xE2\x82", 2, 10, FD_TEXT_BYTES) == 2,
          "text_cut: a truncated character still makes progress");
    CHECK(h->text_cut("\xE2\x82\xAC", 3, 1, FD_TEXT_BYTES) > 0,
          "text_cut: never 0 when nothing fits");

    int a = h->backoff_ms(1, 1000, 60000), b = h->backoff_ms(4, 1000, 60000),
        c = h->backoff_ms(30, 1000, 60000);
    CHECK(a >= 800 && a <= 1200, "backoff: first attempt ~ base");
    CHECK(b >= 6400 && b <= 9600, "backoff: doubles per attempt");
    CHECK(c >= 48000 && c <= 72000, "backoff: capped");
    return CHECK_DONE();
}
