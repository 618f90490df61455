/*
 * text.c - normalisation, sensitive-data detection, order numbers and tone
 * (see text.h).  Pure C, no heap, no Lua; every function takes a length and
 * never reads past it.
 *
 * Detection heuristics, in the order text_find_sensitive applies them (a
 * later kind never claims bytes an earlier kind took):
 *   IBAN   country code + 2 digits at a word start, then exactly the
 *          country's length of letters/digits, single spaces allowed
 *          between them; mod 97 must be 1 and the check digits 02..98.
 *   e-mail local@domain.tld with a dotted domain and an alphabetic TLD.
 *   card   13..19 digits in groups split by single spaces or dashes, first
 *          digit 2..6 (Visa, Mastercard, Amex, Discover, JCB, Maestro),
 *          Luhn valid.  Not right after '+', which starts a phone number.
 *   phone  "+CC...", "00CC..." (8..15 digits) or a national number with a
 *          trunk "0" (9..14 digits); separators " -/()" ('.' only after
 *          +/00), "(0)" after the country code is dropped.  Digits right
 *          after an order keyword (Bestellung, order, Rechnung ...) are not
 *          a phone number.  Bare digit runs without +, 00 or 0 are never
 *          phones: in support messages they are order and customer numbers.
 */
#include "text.h"

#include <stdint.h>
#include <string.h>

/* ---- UTF-8 and character classes ------------------------------------ */

size_t text_utf8_decode(const char *s, size_t len, long *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[0];
    size_t n;
    long v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = -1;
        return 1;
    }
    if (n > len) {
        *cp = -1;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = v;
    return n;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool is_alnum(int c) { return is_digit(c) || is_alpha(c); }
static int to_upper(int c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
static int to_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Folding of U+00C0..U+017F; NULL: a separator (× and ÷). */
/* clang-format off */
static const char *const latin[192] = {
    /* C0 */ "a", "a", "a", "a", "ae", "a", "ae", "c",
    "e", "e", "e", "e", "i", "i", "i", "i",
    /* D0 */ "d", "n", "o", "o", "o", "o", "oe", NULL,
    "o", "u", "u", "u", "ue", "y", "th", "ss",
    /* E0 */ "a", "a", "a", "a", "ae", "a", "ae", "c",
    "e", "e", "e", "e", "i", "i", "i", "i",
    /* F0 */ "d", "n", "o", "o", "o", "o", "oe", NULL,
    "o", "u", "u", "u", "ue", "y", "th", "y",
    /* 100 */ "a", "a", "a", "a", "a", "a", "c", "c",
    "c", "c", "c", "c", "c", "c", "d", "d",
    /* 110 */ "d", "d", "e", "e", "e", "e", "e", "e",
    "e", "e", "e", "e", "g", "g", "g", "g",
    /* 120 */ "g", "g", "g", "g", "h", "h", "h", "h",
    "i", "i", "i", "i", "i", "i", "i", "i",
    /* 130 */ "i", "i", "ij", "ij", "j", "j", "k", "k",
    "k", "l", "l", "l", "l", "l", "l", "l",
    /* 140 */ "l", "l", "l", "n", "n", "n", "n", "n",
    "n", "n", "n", "n", "o", "o", "o", "o",
    /* 150 */ "o", "o", "oe", "oe", "r", "r", "r", "r",
    "r", "r", "s", "s", "s", "s", "s", "s",
    /* 160 */ "s", "s", "t", "t", "t", "t", "t", "t",
    "u", "u", "u", "u", "u", "u", "u", "u",
    /* 170 */ "u", "u", "u", "u", "w", "w", "y", "y",
    "y", "z", "z", "z", "z", "z", "z", "s",
};
/* clang-format on */

enum cls { C_SEP, C_DROP, C_TEXT, C_RAW, C_DIAERESIS };

/* How code point cp enters normalised text; for C_TEXT *rep is the text
 * (rep[0..*replen)), for C_RAW the original bytes are kept. */
static enum cls classify(long cp, const char **rep, size_t *replen, char tmp[4])
{
    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z') {
            tmp[0] = (char)(cp + 32);
            *rep = tmp, *replen = 1;
            return C_TEXT;
        }
        if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
            tmp[0] = (char)cp;
            *rep = tmp, *replen = 1;
            return C_TEXT;
        }
        return cp == '\'' || cp == '`' ? C_DROP : C_SEP;
    }
    if (cp < 0xC0) {
        if (cp == 0xAA || cp == 0xBA) { /* ª º */
            tmp[0] = cp == 0xAA ? 'a' : 'o';
            *rep = tmp, *replen = 1;
            return C_TEXT;
        }
        if (cp == 0xB4 || cp == 0xAD) /* acute accent, soft hyphen */
            return C_DROP;
        if (cp == 0xB5) /* µ */
            return C_RAW;
        return C_SEP;
    }
    if (cp < 0x180) {
        const char *r = latin[cp - 0xC0];
        if (!r)
            return C_SEP;
        *rep = r, *replen = strlen(r);
        return C_TEXT;
    }
    if (cp >= 0x300 && cp <= 0x36F)
        return cp == 0x308 ? C_DIAERESIS : C_DROP;
    if ((cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) ||
        (cp >= 0x410 && cp <= 0x42F) || (cp >= 0x400 && cp <= 0x40F)) {
        long lc = cp >= 0x400 && cp <= 0x40F ? cp + 0x50 : cp + 0x20;
        tmp[0] = (char)(0xC0 | (lc >> 6));
        tmp[1] = (char)(0x80 | (lc & 0x3F));
        *rep = tmp, *replen = 2;
        return C_TEXT;
    }
    if (cp == 0x1E9E) { /* capital sharp s */
        *rep = "ss", *replen = 2;
        return C_TEXT;
    }
    if (cp == 0x2018 || cp == 0x2019 || cp == 0x02BC || cp == 0x200C ||
        cp == 0x200D || cp == 0x2060 || cp == 0xFEFF ||
        (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0000 && cp <= 0xE007F))
        return C_DROP;
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0x1F000 && cp <= 0x1FAFF) || cp == 0x2E3A || cp == 0x2E3B ||
        (cp >= 0xFE10 && cp <= 0xFE6F))
        return C_SEP;
    if (cp >= 0xFF01 && cp <= 0xFF5E) /* fullwidth ASCII */
        return classify(cp - 0xFEE0, rep, replen, tmp);
    return C_RAW;
}

static size_t normalize(const char *in, size_t len, char *out, size_t cap,
                        bool keep_star)
{
    size_t o = 0;
    bool space = false;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned char b = (unsigned char)in[i];
        if (b < 0x80) { /* the common case, without decoding */
            char c;
            i++;
            if ((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9'))
                c = (char)b;
            else if (b >= 'A' && b <= 'Z')
                c = (char)(b + 32);
            else if (b == '\'' || b == '`')
                continue;
            else if (keep_star && b == '*' && o > 0 && !space)
                c = '*';
            else {
                space = true;
                continue;
            }
            if (space && o > 0) {
                if (o + 2 >= cap)
                    break;
                out[o++] = ' ';
            } else if (o + 1 >= cap) {
                break;
            }
            space = false;
            out[o++] = c;
            continue;
        }
        long cp;
        size_t n = text_utf8_decode(in + i, len - i, &cp);
        const char *rep = NULL;
        size_t rlen = 0;
        char tmp[4];
        enum cls c = cp < 0 ? C_SEP : classify(cp, &rep, &rlen, tmp);
        if (keep_star && cp == '*' && o > 0 && !space) {
            c = C_TEXT, rep = "*", rlen = 1;
        } else if (c == C_RAW) {
            rep = in + i, rlen = n;
        } else if (c == C_DIAERESIS) {
            /* "u" + combining diaeresis is the decomposed "ü" */
            char p = o > 0 && !space ? out[o - 1] : 0;
            c = p == 'a' || p == 'o' || p == 'u' ? C_TEXT : C_DROP;
            rep = "e", rlen = 1;
        }
        i += n;
        if (c == C_SEP) {
            space = true;
            continue;
        }
        if (c == C_DROP)
            continue;
        size_t need = rlen + (space && o > 0 ? 1 : 0);
        if (o + need >= cap)
            break;
        if (space && o > 0)
            out[o++] = ' ';
        space = false;
        memcpy(out + o, rep, rlen);
        o += rlen;
    }
    out[o] = '\0';
    return o;
}

size_t text_normalize(const char *in, size_t len, char *out, size_t outcap)
{
    return normalize(in, len, out, outcap, false);
}

size_t text_phrase_prepare(const char *in, size_t len, char *out, size_t outcap)
{
    return normalize(in, len, out, outcap, true);
}

bool text_has_phrase(const char *norm, size_t normlen, const char *phrase,
                     size_t phraselen)
{
    if (phraselen == 0)
        return false;
    for (size_t start = 0; start < normlen;) {
        size_t t = start, p = 0;
        bool ok = true;
        while (p < phraselen) {
            size_t pe = p;
            while (pe < phraselen && phrase[pe] != ' ')
                pe++;
            size_t wl = pe - p;
            bool prefix = wl > 0 && phrase[pe - 1] == '*';
            if (prefix)
                wl--;
            size_t te = t;
            while (te < normlen && norm[te] != ' ')
                te++;
            if (te - t < wl || memcmp(norm + t, phrase + p, wl) != 0 ||
                (!prefix && te - t != wl)) {
                ok = false;
                break;
            }
            p = pe < phraselen ? pe + 1 : pe;
            if (p < phraselen && te >= normlen) {
                ok = false;
                break;
            }
            t = te + 1;
        }
        if (ok)
            return true;
        while (start < normlen && norm[start] != ' ')
            start++;
        start++;
    }
    return false;
}

/* ---- IBAN ------------------------------------------------------------ */

/* ISO 13616 registry lengths (SWIFT IBAN registry), sorted by code. */
static const struct {
    char cc[3];
    unsigned char len;
} iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20},
    {"BE", 16}, {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28},
    {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
    {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19},
    {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18},
    {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23},
    {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

int text_iban_length(const char *cc)
{
    if (!cc || !is_alpha((unsigned char)cc[0]) ||
        !is_alpha((unsigned char)cc[1]))
        return 0;
    char a = (char)to_upper((unsigned char)cc[0]);
    char b = (char)to_upper((unsigned char)cc[1]);
    size_t lo = 0, hi = sizeof iban_len / sizeof iban_len[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = iban_len[mid].cc[0] - a;
        if (d == 0)
            d = iban_len[mid].cc[1] - b;
        if (d == 0)
            return iban_len[mid].len;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* c[0..n) is compact upper case; true when it is a valid IBAN. */
static bool iban_check(const char *c, size_t n)
{
    if (n < 15 || n > 34 || (int)n != text_iban_length(c) || !is_digit(c[2]) ||
        !is_digit(c[3]))
        return false;
    int check = (c[2] - '0') * 10 + (c[3] - '0');
    if (check < 2 || check > 98)
        return false;
    unsigned r = 0;
    for (size_t k = 0; k < n; k++) {
        char ch = c[(k + 4) % n]; /* BBAN first, then country and check */
        if (is_digit(ch))
            r = (r * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            r = (r * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            return false;
    }
    return r == 1;
}

/* Reads an IBAN starting at s[i] (a word start); on success stores the
 * compact form in out (>= 35 bytes) and the end offset. */
static bool iban_at(const char *s, size_t len, size_t i, char *out, size_t *end)
{
    if (i + 4 > len || !is_alpha((unsigned char)s[i]) ||
        !is_alpha((unsigned char)s[i + 1]) || !is_digit(s[i + 2]) ||
        !is_digit(s[i + 3]))
        return false;
    int want = text_iban_length(s + i);
    if (want == 0)
        return false;
    int n = 0;
    size_t j = i, e = i;
    while (j < len && n < want) {
        unsigned char c = (unsigned char)s[j];
        if (is_alnum(c)) {
            out[n++] = (char)to_upper(c);
            e = ++j;
        } else if (c == ' ' && j + 1 < len &&
                   is_alnum((unsigned char)s[j + 1])) {
            j++;
        } else {
            break;
        }
    }
    out[n] = '\0';
    if (n != want || (e < len && is_alnum((unsigned char)s[e])))
        return false;
    *end = e;
    return iban_check(out, (size_t)n);
}

bool text_is_iban(const char *s, size_t len)
{
    char buf[40];
    size_t b = 0, e;
    while (b < len && is_space((unsigned char)s[b]))
        b++;
    while (len > b && is_space((unsigned char)s[len - 1]))
        len--;
    return iban_at(s, len, b, buf, &e) && e == len;
}

/* ---- cards ----------------------------------------------------------- */

static bool luhn(const char *d, size_t n)
{
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned v = (unsigned)(d[n - 1 - k] - '0');
        if (k & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

bool text_is_card(const char *s, size_t len)
{
    char d[20];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_digit(c)) {
            if (n == sizeof d - 1)
                return false;
            d[n++] = (char)c;
        } else if ((c == ' ' || c == '-') && n > 0 && i + 1 < len &&
                   is_digit(s[i + 1])) {
            continue;
        } else if (!(is_space(c) && (n == 0 || i + 1 == len))) {
            return false;
        }
    }
    return n >= 13 && n <= 19 && luhn(d, n);
}

/* A run of digit groups split by single ' ' or '-'. */
struct run {
    size_t gs[24], ge[24]; /* byte offsets of each group */
    int n;
};

static size_t digit_run(const char *s, size_t len, size_t i, struct run *r)
{
    r->n = 0;
    while (i < len && is_digit(s[i]) && r->n < 24) {
        r->gs[r->n] = i;
        while (i < len && is_digit(s[i]))
            i++;
        r->ge[r->n++] = i;
        if (i + 1 < len && (s[i] == ' ' || s[i] == '-') && is_digit(s[i + 1]))
            i++;
        else
            break;
    }
    return i;
}

/* Finds the first card in the run (leftmost start, then longest). */
static bool card_in_run(const char *s, size_t len, const struct run *r,
                        size_t *off, size_t *end, char *val)
{
    for (int a = 0; a < r->n; a++) {
        if (a == 0 && r->gs[0] > 0 && s[r->gs[0] - 1] == '+')
            continue;
        if (s[r->gs[a]] < '2' || s[r->gs[a]] > '6')
            continue;
        for (int b = r->n - 1; b >= a; b--) {
            if (b == r->n - 1 && r->ge[b] < len &&
                is_alnum((unsigned char)s[r->ge[b]]))
                continue;
            char d[20];
            size_t n = 0;
            bool fits = true;
            for (int g = a; g <= b && fits; g++)
                for (size_t k = r->gs[g]; k < r->ge[g]; k++) {
                    if (n == 19) {
                        fits = false;
                        break;
                    }
                    d[n++] = s[k];
                }
            if (!fits || n < 13 || !luhn(d, n))
                continue;
            memcpy(val, d, n);
            val[n] = '\0';
            *off = r->gs[a];
            *end = r->ge[b];
            return true;
        }
    }
    return false;
}

/* ---- e-mail ---------------------------------------------------------- */

static bool local_char(int c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
           c == '-';
}

static bool email_at(const char *s, size_t len, size_t at, size_t *off,
                     size_t *end, char *val, size_t valcap)
{
    size_t b = at, e = at + 1;
    while (b > 0 && local_char((unsigned char)s[b - 1]))
        b--;
    while (b < at && s[b] == '.')
        b++;
    if (b == at || at - b > 64)
        return false;
    while (e < len &&
           (is_alnum((unsigned char)s[e]) || s[e] == '.' || s[e] == '-'))
        e++;
    while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-'))
        e--;
    /* labels: non-empty, the last one alphabetic and >= 2 long */
    size_t dots = 0, lab = at + 1, tld_alpha = 1;
    for (size_t k = at + 1; k <= e; k++) {
        if (k == e || s[k] == '.') {
            if (k == lab)
                return false;
            if (k < e)
                dots++, lab = k + 1;
        }
    }
    for (size_t k = lab; k < e; k++)
        if (!is_alpha((unsigned char)s[k]))
            tld_alpha = 0;
    if (dots == 0 || e - lab < 2 || !tld_alpha || e - b > 254 ||
        e - b >= valcap)
        return false;
    for (size_t k = b; k < e; k++)
        val[k - b] = k > at ? (char)to_lower((unsigned char)s[k]) : s[k];
    val[e - b] = '\0';
    *off = b;
    *end = e;
    return true;
}

/* ---- order keywords (shared by phones and order numbers) -------------- */

static const char *const order_words[] = {
    "order",        "orders",         "ordernumber",  "order-no",
    "order-nr",     "bestellung",     "bestellungen", "bestellnummer",
    "bestellnr",    "bestell-nr",     "auftrag",      "auftragsnummer",
    "auftragsnr",   "auftrags-nr",    "rechnung",     "rechnungsnummer",
    "rechnungsnr",  "rechnungs-nr",   "invoice",      "lieferung",
    "sendung",      "sendungsnummer", "tracking",     "paket",
    "kundennummer", "customer",       NULL,
};

static const char *const filler_words[] = {"nr", "no",  "nummer", "number",
                                           "id", "num", NULL};

static bool in_list(const char *const *list, const char *w)
{
    for (int k = 0; list[k]; k++)
        if (strcmp(w, list[k]) == 0)
            return true;
    return false;
}

/* True when one of the `window` words before s[i] is an order word; filler
 * words ("Nr.", "No.", "number") between them do not count. */
static bool after_order_word(const char *s, size_t i, int window)
{
    size_t k = i;
    for (int w = 0; w < window;) {
        while (k > 0 && !is_alnum((unsigned char)s[k - 1]) && s[k - 1] != '-')
            k--;
        size_t e = k;
        while (k > 0 && (is_alnum((unsigned char)s[k - 1]) || s[k - 1] == '-'))
            k--;
        if (k == e)
            return false;
        char word[24];
        size_t n = e - k;
        if (n >= sizeof word) {
            w++;
            continue;
        }
        for (size_t j = 0; j < n; j++)
            word[j] = (char)to_lower((unsigned char)s[k + j]);
        word[n] = '\0';
        if (in_list(order_words, word))
            return true;
        if (!in_list(filler_words, word))
            w++;
    }
    return false;
}

/* ---- phone ----------------------------------------------------------- */

static bool phone_sep(int c, bool intl)
{
    return c == ' ' || c == '-' || c == '/' || c == '(' || c == ')' ||
           (intl && c == '.');
}

static bool phone_at(const char *s, size_t len, size_t i, size_t *end,
                     char *val)
{
    size_t j = i;
    bool intl = false;
    if (s[j] == '+') {
        intl = true;
        j++;
        if (j >= len || s[j] < '1' || s[j] > '9')
            return false;
    } else {
        if (s[j] == '(')
            j++;
        if (j + 1 >= len || s[j] != '0' || !is_digit(s[j + 1]))
            return false;
        if (s[j + 1] == '0') {
            if (j + 2 >= len || s[j + 2] < '1' || s[j + 2] > '9')
                return false;
            intl = true;
            j += 2;
        }
    }
    size_t n = 0, e = j;
    int seps = 0;
    char d[20];
    if (intl)
        d[n++] = '+';
    while (j < len) {
        char c = s[j];
        if (is_digit(c)) {
            if (n == 16)
                return false;
            d[n++] = c;
            e = ++j;
            seps = 0;
        } else if (intl && n > 1 && c == '(' && j + 2 < len &&
                   s[j + 1] == '0' && s[j + 2] == ')') {
            j += 3, seps++; /* "+49 (0) 30": the (0) is not dialled */
        } else if (phone_sep(c, intl) && seps < 3) {
            j++, seps++;
        } else {
            break;
        }
        if (seps > 3)
            break;
    }
    if (e < len && is_alnum((unsigned char)s[e]))
        return false;
    size_t digits = intl ? n - 1 : n;
    if (intl ? (digits < 8 || digits > 15) : (digits < 9 || digits > 14))
        return false;
    memcpy(val, d, n);
    val[n] = '\0';
    *end = e;
    return true;
}

/* ---- sensitive data -------------------------------------------------- */

const char *text_kind_name(enum text_kind k)
{
    switch (k) {
    case TEXT_IBAN:
        return "iban";
    case TEXT_CARD:
        return "card";
    case TEXT_EMAIL:
        return "email";
    case TEXT_PHONE:
        return "phone";
    default:
        return "?";
    }
}

static bool overlaps(const struct text_match *m, size_t n, size_t off,
                     size_t end)
{
    for (size_t k = 0; k < n; k++)
        if (off < m[k].off + m[k].len && m[k].off < end)
            return true;
    return false;
}

static bool word_start(const char *s, size_t i)
{
    return i == 0 || !is_alnum((unsigned char)s[i - 1]);
}

size_t text_find_sensitive(const char *s, size_t len, struct text_match *out,
                           size_t max)
{
    static const int order[] = {TEXT_IBAN, TEXT_EMAIL, TEXT_CARD, TEXT_PHONE};
    size_t n = 0;
    for (size_t pass = 0; pass < 4 && n < max; pass++) {
        int kind = order[pass];
        for (size_t i = 0; i < len && n < max;) {
            struct text_match *m = &out[n];
            size_t off = i, end = i;
            bool hit = false;
            switch (kind) {
            case TEXT_IBAN:
                hit = word_start(s, i) && iban_at(s, len, i, m->value, &end);
                break;
            case TEXT_EMAIL:
                hit = s[i] == '@' && email_at(s, len, i, &off, &end, m->value,
                                              sizeof m->value);
                break;
            case TEXT_CARD:
                if (is_digit(s[i]) && word_start(s, i)) {
                    struct run r;
                    size_t re = digit_run(s, len, i, &r);
                    hit = card_in_run(s, len, &r, &off, &end, m->value);
                    if (!hit) {
                        i = re > i ? re : i + 1;
                        continue;
                    }
                }
                break;
            case TEXT_PHONE:
                hit = (s[i] == '+' || s[i] == '0' || s[i] == '(') &&
                      word_start(s, i) && (i == 0 || s[i - 1] != '+') &&
                      phone_at(s, len, i, &end, m->value) &&
                      (s[i] == '+' || !after_order_word(s, i, 1));
                break;
            }
            if (hit && !overlaps(out, n, off, end)) {
                m->kind = (enum text_kind)kind;
                m->off = off;
                m->len = end - off;
                n++;
                i = end;
            } else {
                i++;
            }
        }
    }
    return n;
}

/* ---- order numbers --------------------------------------------------- */

static bool order_char(int c)
{
    return is_alnum(c) || c == '-' || c == '/' || c == '_';
}

bool text_order_number(const char *s, size_t len, char *out, size_t outcap)
{
    struct text_match sens[8];
    size_t nsens = text_find_sensitive(s, len, sens, 8);
    for (size_t i = 0; i < len;) {
        while (i < len && !order_char((unsigned char)s[i]))
            i++;
        size_t b = i;
        while (i < len && order_char((unsigned char)s[i]))
            i++;
        size_t e = i;
        while (e > b && (s[e - 1] == '-' || s[e - 1] == '/'))
            e--;
        size_t digits = 0;
        for (size_t k = b; k < e; k++)
            digits += is_digit(s[k]);
        if (digits < 4 || e - b < 4 || e - b > 32 || e - b >= outcap)
            continue;
        bool hash = b > 0 && s[b - 1] == '#';
        if (!hash && !after_order_word(s, b, 3))
            continue;
        if (overlaps(sens, nsens, b, e))
            continue; /* an IBAN or phone number is no order number */
        memcpy(out, s + b, e - b);
        out[e - b] = '\0';
        return true;
    }
    return false;
}

/* ---- tone ------------------------------------------------------------ */

struct tone_word {
    const char *w; /* normalised */
    unsigned char len;
    float weight; /* < 0 anger/complaint, > 0 thanks/praise */
};

#define W(s, wt)                                                               \
    {                                                                          \
        s, sizeof(s) - 1, wt                                                   \
    }

/* German and English, whole words.  Keep sorted (binary search). */
/* clang-format off */
static const struct tone_word tone_words[] = {
    W("abgezockt", -0.6f), W("angry", -0.5f), W("annoyed", -0.4f),
    W("anwalt", -0.5f), W("awesome", 0.3f), W("awful", -0.4f), W("bad", -0.3f),
    W("beschwerde", -0.3f), W("betrug", -0.6f), W("bullshit", -0.6f),
    W("complaint", -0.3f), W("crap", -0.5f), W("damn", -0.4f), W("dank", 0.3f),
    W("disappointed", -0.4f), W("disgusting", -0.5f), W("endlich", -0.2f),
    W("enttaeuschung", -0.4f), W("excellent", 0.3f), W("fraud", -0.6f),
    W("frechheit", -0.6f), W("freundlich", 0.2f), W("furchtbar", -0.4f),
    W("furious", -0.6f), W("genervt", -0.4f), W("glad", 0.3f), W("good", 0.2f),
    W("great", 0.3f), W("gut", 0.2f), W("happy", 0.3f), W("hate", -0.5f),
    W("helpful", 0.3f), W("hilfreich", 0.3f), W("horrible", -0.4f),
    W("ignoriert", -0.3f), W("inakzeptabel", -0.5f), W("incompetent", -0.5f),
    W("joke", -0.2f), W("kacke", -0.5f), W("klasse", 0.3f),
    W("laecherlich", -0.5f), W("lawyer", -0.5f), W("love", 0.3f),
    W("miserabel", -0.5f), W("mist", -0.4f), W("nervt", -0.4f),
    W("nice", 0.2f), W("outrageous", -0.5f), W("pathetic", -0.5f),
    W("perfect", 0.3f), W("perfekt", 0.3f), W("prima", 0.3f),
    W("reklamation", -0.2f), W("ridiculous", -0.5f), W("ripoff", -0.6f),
    W("saftladen", -0.6f), W("sauer", -0.4f), W("schrecklich", -0.4f),
    W("sucks", -0.5f), W("super", 0.3f), W("terrible", -0.4f),
    W("thank", 0.4f), W("thanks", 0.4f), W("thx", 0.3f), W("toll", 0.3f),
    W("unacceptable", -0.5f), W("unmoeglich", -0.4f), W("unzumutbar", -0.5f),
    W("upset", -0.4f), W("useless", -0.5f), W("verbraucherzentrale", -0.5f),
    W("wonderful", 0.3f), W("worst", -0.5f), W("wtf", -0.6f),
    W("wuetend", -0.5f), W("wunderbar", 0.3f), W("zufrieden", 0.3f),
};

/* Word stems: "scheiss" matches "scheisse", "scheissladen". */
static const struct tone_word tone_stems[] = {
    W("aerger", -0.4f), W("enttaeuscht", -0.4f), W("unverschaemt", -0.6f),
    W("katastroph", -0.5f), W("skandal", -0.5f), W("betrueger", -0.6f),
    W("abzocke", -0.6f), W("verarsch", -0.6f), W("scheiss", -0.6f),
    W("schlecht", -0.3f), W("schlimm", -0.3f), W("unfaehig", -0.5f),
    W("idiot", -0.6f), W("kotz", -0.6f), W("scam", -0.6f), W("shit", -0.6f),
    W("fuck", -0.7f), W("danke", 0.4f), W("appreciate", 0.3f),
};

/* Phrases of several words. */
static const struct tone_word tone_phrases[] = {
    W("nie wieder", -0.5f), W("zum kotzen", -0.6f), W("schon wieder", -0.3f),
    W("immer noch nicht", -0.3f), W("keine antwort", -0.3f),
    W("never again", -0.5f), W("rip off", -0.6f), W("fed up", -0.5f),
    W("sick of", -0.5f), W("still waiting", -0.3f), W("still not", -0.3f),
    W("no answer", -0.3f),
};
/* clang-format on */

static const char *const negators[] = {
    "nicht", "kein", "keine", "keinen", "nie",    "not",   "no",
    "never", "dont", "isnt",  "wasnt",  "doesnt", "arent", NULL,
};

static float word_weight(const char *w, size_t n)
{
    size_t lo = 0, hi = sizeof tone_words / sizeof tone_words[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct tone_word *t = &tone_words[mid];
        int d = memcmp(t->w, w, t->len < n ? t->len : n);
        if (d == 0)
            d = (int)t->len - (int)n;
        if (d == 0)
            return t->weight;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < sizeof tone_stems / sizeof tone_stems[0]; k++) {
        const struct tone_word *t = &tone_stems[k];
        if (t->w[0] == w[0] && n >= t->len && memcmp(w, t->w, t->len) == 0)
            return t->weight;
    }
    return 0;
}

/* The weight of phrases starting at norm[i] (a word start). */
static float phrase_weight(const char *norm, size_t n, size_t i)
{
    float sum = 0;
    for (size_t k = 0; k < sizeof tone_phrases / sizeof tone_phrases[0]; k++) {
        const struct tone_word *t = &tone_phrases[k];
        if (t->w[0] == norm[i] && i + t->len <= n &&
            memcmp(norm + i, t->w, t->len) == 0 &&
            (i + t->len == n || norm[i + t->len] == ' '))
            sum += t->weight;
    }
    return sum;
}

static bool is_negator(const char *w, size_t n)
{
    for (int k = 0; negators[k]; k++)
        if (strlen(negators[k]) == n && memcmp(negators[k], w, n) == 0)
            return true;
    return false;
}

/* Shouting: 0..0.7 from "!!", "!!!", "???" and words in capitals. */
static double intensity(const char *s, size_t len)
{
    size_t run = 0, maxrun = 0, qrun = 0, maxq = 0;
    int caps = 0, words = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == '!') {
            if (++run > maxrun)
                maxrun = run;
        } else if (s[i] != '?' && s[i] != '1') {
            run = 0;
        }
        if (s[i] == '?') {
            if (++qrun > maxq)
                maxq = qrun;
        } else {
            qrun = 0;
        }
        if (!is_alpha((unsigned char)s[i]) && (unsigned char)s[i] < 0xC3) {
            i++;
            continue;
        }
        int up = 0, low = 0;
        while (i < len) {
            unsigned char c = (unsigned char)s[i];
            if (is_alpha(c)) {
                up += c <= 'Z', low += c >= 'a';
                i++;
            } else if (c == 0xC3 && i + 1 < len) {
                /* Ä Ö Ü are C3 84/96/9C; ä ö ü ß are C3 A4/B6/BC/9F */
                unsigned char d = (unsigned char)s[i + 1];
                if (d == 0x84 || d == 0x96 || d == 0x9C)
                    up++;
                else
                    low++;
                i += 2;
            } else {
                break;
            }
        }
        if (up + low == 0) {
            i++;
            continue;
        }
        words++;
        if (low == 0 && up >= 3)
            caps++;
    }
    double v = 0;
    if (maxrun >= 3)
        v += 0.3;
    else if (maxrun == 2 || maxq >= 3)
        v += 0.15;
    if (caps >= 3 || (caps >= 2 && caps * 2 >= words))
        v += 0.4;
    return v;
}

double text_tone(const char *s, size_t len)
{
    char norm[2048];
    if (len >= sizeof norm)
        len = sizeof norm - 1; /* the start carries the tone */
    size_t n = text_normalize(s, len, norm, sizeof norm);
    double score = 0;
    const char *prev = NULL;
    size_t prevlen = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && norm[e] != ' ')
            e++;
        float w = word_weight(norm + i, e - i);
        if (w != 0 && prev && is_negator(prev, prevlen))
            w = w > 0 ? -w : 0; /* "nicht zufrieden"; "not bad" is neutral */
        score += w + phrase_weight(norm, n, i);
        prev = norm + i;
        prevlen = e - i;
        i = e + 1;
    }
    if (score <= 0)
        score -= intensity(s, len);
    if (score < -1)
        score = -1;
    if (score > 1)
        score = 1;
    return score;
}
