/*
 * faq.h - FAQ matching over normalised words, compiled once: a word-level
 * trie whose edges live in one open-addressing hash table keyed by
 * (node, word).  Matching walks the message's words from every start
 * position, so its cost depends on the message, not on the number of
 * entries (5 or 5000 entries cost about the same).
 *
 * A phrase word may end in `*` to match as a prefix ("öffnungszeit*"
 * matches "öffnungszeiten"); each node keeps a bit set of its prefix
 * lengths, so a prefix costs one probe per distinct length, not one per
 * phrase.  The longest phrase (in words) wins; ties go to the earliest
 * entry.  Answers are not stored here: an entry is its index.
 *
 * Memory comes from a lua_Alloc-style allocator so a script's FAQ counts
 * against the script's memory cap; NULL means malloc.  Not thread-safe;
 * faq_match does not allocate for texts under 4 KiB.
 */
#ifndef FRONTDESK_FAQ_H
#define FRONTDESK_FAQ_H

#include <stddef.h>

struct faq;

/* Same contract as lua_Alloc: nsize 0 frees, else (re)allocates. */
typedef void *(*faq_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* A new, empty FAQ, or NULL when out of memory. */
struct faq *faq_new(faq_alloc_fn alloc, void *ud);
void faq_free(struct faq *f);

/* Adds `phrase` (any text; normalised here) as a trigger of entry
 * `entry` (>= 0).  Returns 0, -ENOMEM, -EINVAL when the phrase has no
 * words, is longer than 32 words, or a prefix word is longer than 63
 * bytes. */
int faq_add(struct faq *f, const char *phrase, size_t len, int entry);

/* The entry whose phrase occurs in `text` (normalised here) as whole words,
 * longest phrase first, earliest entry on ties; -1 when none matches.
 * *words (may be NULL) gets the matched phrase's length in words. */
int faq_match(const struct faq *f, const char *text, size_t len, int *words);

/* Number of phrases and trie nodes (for tests and logs). */
size_t faq_phrases(const struct faq *f);
size_t faq_nodes(const struct faq *f);

#endif
