/*
 * faq.c - the FAQ trie (see faq.h).
 *
 * Layout: nodes are indices (0 = root); an edge (parent, word, prefix?) →
 * child sits in one open-addressing hash table with linear probing, kept
 * at most half full; edge words live in one arena.  A word's hash is
 * FNV-1a over its bytes, computed incrementally while matching so that
 * every prefix length a node asks for costs one probe and no rehash.
 */
#include "faq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define MAX_WORDS 32  /* words per phrase: bounds the walk's depth */
#define MAX_PREFIX 63 /* prefix lengths are bits of a uint64_t */

struct edge {
    uint32_t hash;
    uint32_t parent;
    uint32_t child; /* 0: empty slot (the root is nobody's child) */
    uint32_t word;  /* offset in the arena */
    uint16_t len;
    uint8_t prefix;
};

struct node {
    int32_t entry;        /* entry ending here, -1: none */
    uint64_t prefix_lens; /* bit L: a prefix edge of length L leaves here */
};

struct faq {
    faq_alloc_fn alloc;
    void *ud;
    struct edge *tab;
    uint32_t tcap, tcount;
    struct node *nodes;
    uint32_t ncount, ncap;
    char *words;
    size_t wlen, wcap;
    size_t phrases;
};

static void *std_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud, (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static uint32_t key_hash(uint32_t word_hash, uint32_t parent, bool prefix)
{
    uint32_t h =
        word_hash ^ (parent * 0x9E3779B1u) ^ (prefix ? 0x85EBCA6Bu : 0);
    h ^= h >> 16; /* murmur3 finaliser: spread into the low bits */
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static uint32_t word_hash(const char *w, size_t n)
{
    uint32_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)w[i]) * FNV_PRIME;
    return h;
}

struct faq *faq_new(faq_alloc_fn alloc, void *ud)
{
    if (!alloc)
        alloc = std_alloc;
    struct faq *f = alloc(ud, NULL, 0, sizeof *f);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    f->alloc = alloc;
    f->ud = ud;
    f->ncap = 16;
    f->nodes = alloc(ud, NULL, 0, f->ncap * sizeof *f->nodes);
    f->tcap = 64;
    f->tab = alloc(ud, NULL, 0, f->tcap * sizeof *f->tab);
    if (!f->nodes || !f->tab) {
        faq_free(f);
        return NULL;
    }
    memset(f->tab, 0, f->tcap * sizeof *f->tab);
    f->nodes[0].entry = -1;
    f->nodes[0].prefix_lens = 0;
    f->ncount = 1;
    return f;
}

void faq_free(struct faq *f)
{
    if (!f)
        return;
    if (f->tab)
        f->alloc(f->ud, f->tab, f->tcap * sizeof *f->tab, 0);
    if (f->nodes)
        f->alloc(f->ud, f->nodes, f->ncap * sizeof *f->nodes, 0);
    if (f->words)
        f->alloc(f->ud, f->words, f->wcap, 0);
    f->alloc(f->ud, f, sizeof *f, 0);
}

size_t faq_phrases(const struct faq *f) { return f ? f->phrases : 0; }
size_t faq_nodes(const struct faq *f) { return f ? f->ncount : 0; }

static uint32_t lookup(const struct faq *f, uint32_t parent, const char *w,
                       size_t len, bool prefix, uint32_t wh)
{
    uint32_t h = key_hash(wh, parent, prefix), mask = f->tcap - 1;
    for (uint32_t k = h & mask;; k = (k + 1) & mask) {
        const struct edge *e = &f->tab[k];
        if (!e->child)
            return 0;
        if (e->hash == h && e->parent == parent && e->len == len &&
            e->prefix == prefix && memcmp(f->words + e->word, w, len) == 0)
            return e->child;
    }
}

static int grow_table(struct faq *f)
{
    uint32_t ncap = f->tcap * 2;
    struct edge *t = f->alloc(f->ud, NULL, 0, ncap * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, ncap * sizeof *t);
    for (uint32_t i = 0; i < f->tcap; i++) {
        const struct edge *e = &f->tab[i];
        if (!e->child)
            continue;
        uint32_t k = e->hash & (ncap - 1);
        while (t[k].child)
            k = (k + 1) & (ncap - 1);
        t[k] = *e;
    }
    f->alloc(f->ud, f->tab, f->tcap * sizeof *f->tab, 0);
    f->tab = t;
    f->tcap = ncap;
    return 0;
}

/* The child of `parent` by word w (an existing one or a new node); 0 when
 * out of memory. */
static uint32_t child_of(struct faq *f, uint32_t parent, const char *w,
                         size_t len, bool prefix)
{
    uint32_t wh = word_hash(w, len);
    uint32_t c = lookup(f, parent, w, len, prefix, wh);
    if (c)
        return c;
    if ((f->tcount + 1) * 2 > f->tcap && grow_table(f) < 0)
        return 0;
    if (f->ncount == UINT32_MAX)
        return 0;
    if (f->ncount == f->ncap) {
        size_t n = (size_t)f->ncap * 2;
        struct node *nn =
            f->alloc(f->ud, f->nodes, f->ncap * sizeof *nn, n * sizeof *nn);
        if (!nn)
            return 0;
        f->nodes = nn;
        f->ncap = (uint32_t)n;
    }
    if (f->wlen + len > f->wcap) {
        size_t n = f->wcap ? f->wcap * 2 : 1024;
        while (n < f->wlen + len)
            n *= 2;
        char *nw = f->alloc(f->ud, f->words, f->wcap, n);
        if (!nw)
            return 0;
        f->words = nw;
        f->wcap = n;
    }
    memcpy(f->words + f->wlen, w, len);
    c = f->ncount++;
    f->nodes[c].entry = -1;
    f->nodes[c].prefix_lens = 0;
    uint32_t h = key_hash(wh, parent, prefix), mask = f->tcap - 1;
    uint32_t k = h & mask;
    while (f->tab[k].child)
        k = (k + 1) & mask;
    f->tab[k] = (struct edge){.hash = h,
                              .parent = parent,
                              .child = c,
                              .word = (uint32_t)f->wlen,
                              .len = (uint16_t)len,
                              .prefix = prefix};
    f->tcount++;
    f->wlen += len;
    if (prefix)
        f->nodes[parent].prefix_lens |= (uint64_t)1 << len;
    return c;
}

int faq_add(struct faq *f, const char *phrase, size_t len, int entry)
{
    char sbuf[1024];
    char *buf = sbuf;
    int rc = 0;
    if (!f || entry < 0 || len >= 65536)
        return -EINVAL;
    if (len + 1 > sizeof sbuf) {
        buf = f->alloc(f->ud, NULL, 0, len + 1);
        if (!buf)
            return -ENOMEM;
    }
    size_t n = text_phrase_prepare(phrase, len, buf, len + 1);
    /* Check the whole phrase before touching the trie. */
    int nwords = 0;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && buf[e] != ' ')
            e++;
        bool prefix = buf[e - 1] == '*';
        if (prefix && e - i - 1 > MAX_PREFIX)
            rc = -EINVAL;
        nwords++;
        i = e + 1;
    }
    if (nwords == 0 || nwords > MAX_WORDS)
        rc = -EINVAL;
    uint32_t node = 0;
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t e = i;
        while (e < n && buf[e] != ' ')
            e++;
        bool prefix = buf[e - 1] == '*';
        /* a '*' inside a word ("a*b") is part of the word: only a
         * trailing one means prefix */
        node = child_of(f, node, buf + i, e - i - prefix, prefix);
        if (!node)
            rc = -ENOMEM;
        i = e + 1;
    }
    if (rc == 0) {
        if (f->nodes[node].entry < 0 || entry < f->nodes[node].entry)
            f->nodes[node].entry = entry;
        f->phrases++;
    }
    if (buf != sbuf)
        f->alloc(f->ud, buf, len + 1, 0);
    return rc;
}

struct span {
    size_t off, len;
};

struct best {
    int entry, words;
};

static void consider(const struct faq *f, uint32_t node, int depth,
                     struct best *b)
{
    int e = f->nodes[node].entry;
    if (e >= 0 && (depth > b->words || (depth == b->words && e < b->entry))) {
        b->entry = e;
        b->words = depth;
    }
}

/* Follows every edge that word i allows out of `node`: the exact word and
 * each prefix length the node has. */
static void walk(const struct faq *f, const char *text, const struct span *w,
                 size_t nw, size_t i, uint32_t node, int depth, struct best *b)
{
    if (i >= nw || depth >= MAX_WORDS)
        return;
    const char *s = text + w[i].off;
    size_t len = w[i].len;
    uint64_t bits = f->nodes[node].prefix_lens;
    uint32_t h = FNV_OFFSET;
    for (size_t l = 1; l <= len; l++) {
        h = (h ^ (unsigned char)s[l - 1]) * FNV_PRIME;
        if (l <= MAX_PREFIX && (bits >> l) & 1) {
            uint32_t c = lookup(f, node, s, l, true, h);
            if (c) {
                consider(f, c, depth + 1, b);
                walk(f, text, w, nw, i + 1, c, depth + 1, b);
            }
        }
    }
    if (len <= UINT16_MAX) {
        uint32_t c = lookup(f, node, s, len, false, h);
        if (c) {
            consider(f, c, depth + 1, b);
            walk(f, text, w, nw, i + 1, c, depth + 1, b);
        }
    }
}

int faq_match(const struct faq *f, const char *text, size_t len, int *words)
{
    char sbuf[4096];
    struct span sspan[512];
    char *buf = sbuf;
    struct span *sp = sspan;
    struct best b = {-1, 0};
    if (words)
        *words = 0;
    if (!f || !text || f->phrases == 0)
        return -1;
    if (len + 1 > sizeof sbuf) {
        buf = f->alloc(f->ud, NULL, 0, len + 1);
        if (!buf)
            return -1;
    }
    size_t n = text_normalize(text, len, buf, len + 1);
    size_t nw = 0, maxw = n / 2 + 1; /* words are >= 1 byte + a space */
    if (maxw > sizeof sspan / sizeof sspan[0]) {
        sp = f->alloc(f->ud, NULL, 0, maxw * sizeof *sp);
        if (!sp)
            goto out;
    }
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && buf[e] != ' ')
            e++;
        sp[nw].off = i;
        sp[nw++].len = e - i;
        i = e + 1;
    }
    for (size_t i = 0; i < nw; i++)
        walk(f, buf, sp, nw, i, 0, 0, &b);
    if (words)
        *words = b.words;
out:
    if (sp != sspan && sp)
        f->alloc(f->ud, sp, maxw * sizeof *sp, 0);
    if (buf != sbuf)
        f->alloc(f->ud, buf, len + 1, 0);
    return b.entry;
}
