/*
 * text.h - pure-C text helpers behind the script library: normalisation
 * (case, umlauts, accents, punctuation), detection of sensitive data (IBAN,
 * payment cards, e-mail, phone numbers), order numbers and a tone score.
 *
 * Nothing here allocates on the heap or touches Lua, so every function is
 * cheap on the message path and unit-testable on its own.  Inputs are byte
 * strings with a length (need not be NUL-terminated), expected to be UTF-8;
 * invalid bytes are treated as separators, never trusted.
 */
#ifndef FRONTDESK_TEXT_H
#define FRONTDESK_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the normalised form of in[0..len) to out and returns its length.
 * Normalised: lowercase; ä ö ü ß → ae oe ue ss (capitals too, also
 * decomposed umlauts); Latin accents folded (é → e, ł → l, œ → oe);
 * apostrophes and soft hyphens dropped inside words ("don't" → "dont");
 * every other punctuation, symbol, emoji and whitespace → one space;
 * trimmed.  Letters of other scripts are kept (Greek and Cyrillic
 * lowercased).  The output is never longer than the input, so
 * outcap >= len + 1 always suffices; with less it is cut at a character
 * boundary.  out is always NUL-terminated when outcap > 0. */
size_t text_normalize(const char *in, size_t len, char *out, size_t outcap);

/* True when the normalised text contains `phrase` (normalised too) as whole
 * words; a `*` right after a word of the phrase makes it a prefix
 * ("öffnungszeit*" matches "öffnungszeiten").  Both arguments must already
 * be normalised except for the stars; see text_phrase_prepare. */
bool text_has_phrase(const char *norm, size_t normlen, const char *phrase,
                     size_t phraselen);

/* Normalises a phrase that may carry `*` after words, keeping the stars:
 * "Öffnungs-Zeit*" → "oeffnungs zeit*".  Same size rule as text_normalize. */
size_t text_phrase_prepare(const char *in, size_t len, char *out,
                           size_t outcap);

/* IBAN (ISO 13616): country code, two check digits, BBAN of the country's
 * length, mod-97 == 1.  Spaces between characters are allowed, case is
 * ignored.  The whole string must be the IBAN (surrounding blanks
 * allowed). */
bool text_is_iban(const char *s, size_t len);

/* The registered IBAN length of a country ("DE" → 22), or 0 if unknown. */
int text_iban_length(const char *cc);

/* The Luhn check over the digits of s; spaces and dashes between digit
 * groups are allowed; anything else makes it false.  13..19 digits. */
bool text_is_card(const char *s, size_t len);

enum text_kind { TEXT_IBAN, TEXT_CARD, TEXT_EMAIL, TEXT_PHONE, TEXT_NKINDS };

/* One piece of sensitive data found in a text: where it is and its
 * canonical form (IBAN compact upper case, card digits only, e-mail as
 * written with the domain lowercased, phone "+<digits>" or national
 * digits). */
struct text_match {
    enum text_kind kind;
    size_t off, len;
    char value[256];
};

/* Finds sensitive data in s, at most `max` matches, and returns how many.
 * Matches are ordered by kind (IBAN, e-mail, card, phone), each kind by
 * position; matches never overlap (an IBAN's digits are never also a
 * phone number).  Heuristics (see text.c): cards need 13..19 digits, a
 * first digit 2..6 and a valid Luhn sum; phones need a leading "+", "00" or
 * a national "0", so bare digit runs (order and customer numbers) are not
 * phones. */
size_t text_find_sensitive(const char *s, size_t len, struct text_match *out,
                           size_t max);

const char *text_kind_name(enum text_kind k);

/* Finds an order number: a token with at least 4 digits (letters, '-', '/'
 * allowed, 4..32 chars) written as "#12345" or following a keyword such as
 * "Bestellung", "Bestellnummer", "Auftrag", "order", "order no." within the
 * three preceding words.  Copies it to out and returns true. */
bool text_order_number(const char *s, size_t len, char *out, size_t outcap);

/* A tone score in [-1, 1]: negative for anger and complaints (German and
 * English word lists, "!!!", words in capitals), positive for thanks and
 * praise, 0 for neutral text.  A negation right before a word ("nicht
 * zufrieden", "not happy") turns praise into complaint. */
double text_tone(const char *s, size_t len);

/* Decodes one UTF-8 character at s[0..len); returns its byte length (>= 1)
 * and stores the code point, or -1 for an invalid byte (length 1). */
size_t text_utf8_decode(const char *s, size_t len, long *cp);

#endif
