/*
 * test_faq.c - the FAQ trie (core/faq.c): matching, longest phrase, ties,
 * umlaut variants, prefixes, and that 5000 entries give the same answer at
 * about the same cost as 5.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "faq.h"

static const char *const base[][4] = {
    {"öffnungszeit*", "geöffnet", "opening hours", NULL},
    {"lieferzeit", "delivery time", "wie lange dauert die lieferung", NULL},
    {"passwort vergessen", "forgot password", "passwort", NULL},
    {"kontakt", "contact", NULL, NULL},
    {"lieferung", NULL, NULL, NULL},
};

static int add_base(struct faq *f)
{
    for (int e = 0; e < 5; e++)
        for (int p = 0; base[e][p]; p++)
            if (faq_add(f, base[e][p], strlen(base[e][p]), e) < 0)
                return -1;
    return 0;
}

static int match(const struct faq *f, const char *text, int *words)
{
    return faq_match(f, text, strlen(text), words);
}

/* Fills a FAQ with n - 5 unrelated entries after the five real ones. */
static int add_fillers(struct faq *f, int n)
{
    char p[64];
    for (int e = 5; e < n; e++) {
        snprintf(p, sizeof p, "thema%d frage%d", e, e % 97);
        if (faq_add(f, p, strlen(p), e) < 0)
            return -1;
        snprintf(p, sizeof p, "stichwort%d*", e);
        if (faq_add(f, p, strlen(p), e) < 0)
            return -1;
    }
    return 0;
}

/* A counting allocator that fails the n-th allocation (0: never). */
static struct {
    long live;    /* bytes held */
    long calls;   /* allocations so far */
    long fail_at; /* 0: never */
} mem;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        if (ptr)
            mem.live -= (long)osize;
        free(ptr);
        return NULL;
    }
    if (++mem.calls == mem.fail_at)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        mem.live += (long)nsize - (ptr ? (long)osize : 0);
    return p;
}

/* Builds a FAQ of 300 entries failing allocation k; 1 when it failed
 * cleanly (an error code, nothing left held after faq_free). */
static int build_failing(long k, bool *completed)
{
    memset(&mem, 0, sizeof mem);
    mem.fail_at = k;
    *completed = false;
    struct faq *f = faq_new(counting_alloc, NULL);
    if (!f)
        return mem.live == 0;
    int rc = 0;
    char p[64];
    for (int e = 0; e < 300 && rc == 0; e++) {
        snprintf(p, sizeof p, "wort%d satz%d ende* %s", e, e,
                 e % 2 ? "x" : "yy");
        rc = faq_add(f, p, strlen(p), e);
    }
    if (rc == 0) {
        *completed = true;
        rc = faq_match(f, "wort7 satz7 endet x", strlen("wort7 satz7 endet x"),
                       NULL) == 7
                 ? 0
                 : -1;
    } else if (rc != -ENOMEM) {
        rc = -1;
    } else {
        rc = 0;
    }
    /* a long text makes faq_match allocate too */
    char big[6000];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    faq_match(f, big, strlen(big), NULL);
    faq_free(f);
    return rc == 0 && mem.live == 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const msgs[] = {
    "Hallo! Wann habt ihr am Samstag geöffnet? Ich wollte noch vorbeikommen.",
    "Ich habe mein Passwort vergessen und komme nicht mehr rein",
    "How long is the delivery time to Austria?",
    "Das hat nichts mit euch zu tun, nur ein Gruss an alle hier im Forum",
};

/* Best of 5 rounds, ns per match. */
static double bench(const struct faq *f)
{
    double best = 1e9;
    volatile int sink = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (int i = 0; i < 4000; i++)
            sink += match(f, msgs[i % 4], NULL);
        double t = (now() - t0) / 4000 * 1e9;
        if (t < best)
            best = t;
    }
    (void)sink;
    return best;
}

int main(void)
{
    struct faq *f = faq_new(NULL, NULL);
    CHECK(f && add_base(f) == 0, "faq: built");
    int w;
    CHECK(match(f, "Wann habt ihr geöffnet?", &w) == 0 && w == 1,
          "faq: simple match");
    CHECK(match(f, "WANN HABT IHR GEOEFFNET", NULL) == 0,
          "faq: spelled-out umlauts, capitals");
    CHECK(match(f, "Wie sind eure Öffnungszeiten?", NULL) == 0,
          "faq: prefix star");
    CHECK(match(f, "Öffnungszeit", NULL) == 0,
          "faq: prefix matches the full stem");
    CHECK(match(f, "What are your opening hours?", &w) == 0 && w == 2,
          "faq: two-word phrase");
    CHECK(match(f, "I'm opening a shop", NULL) == -1,
          "faq: one word of a phrase is no match");
    CHECK(match(f, "Wie ist die Lieferzeit?", NULL) == 1, "faq: second entry");
    CHECK(match(f, "Wie lange dauert die Lieferung nach Wien?", &w) == 1 &&
              w == 5,
          "faq: longest phrase wins over a shorter one of another entry");
    CHECK(match(f, "Die Lieferung ist da", NULL) == 4,
          "faq: short phrase alone");
    CHECK(match(f, "Passwort vergessen, und wie ist die Lieferzeit?", &w) ==
                  2 &&
              w == 2,
          "faq: longest phrase anywhere in the text");
    CHECK(match(f, "Lieferzeit und Kontakt", &w) == 1 && w == 1,
          "faq: equal length: earliest entry wins");
    CHECK(match(f, "Wie ist das Wetter?", NULL) == -1, "faq: no match");
    CHECK(match(f, "", NULL) == -1, "faq: empty text");
    CHECK(match(f, "kontaktformular", NULL) == -1,
          "faq: whole words only without star");
    CHECK(faq_add(f, "?!", 2, 9) == -EINVAL,
          "faq: a phrase without words is refused");
    CHECK(faq_add(f, "kontakt", 7, 7) == 0 && match(f, "kontakt", NULL) == 3,
          "faq: same phrase later keeps the earliest entry");
    CHECK(faq_add(f, "kontakt", 7, -1) == -EINVAL,
          "faq: negative entry refused");

    /* a long text takes the heap path */
    char big[20000];
    memset(big, 'x', sizeof big);
    for (size_t i = 0; i + 1 < sizeof big; i += 7)
        big[i] = ' ';
    memcpy(big + 15000, " kontakt ", 9);
    big[sizeof big - 1] = '\0';
    CHECK(match(f, big, NULL) == 3, "faq: 20 KB text");

    struct faq *g = faq_new(NULL, NULL);
    CHECK(g && add_base(g) == 0 && add_fillers(g, 5000) == 0,
          "faq: 5000 entries built");
    bool same = true;
    const char *probe[] = {
        "Wann habt ihr geöffnet?", "Wie lange dauert die Lieferung nach Wien?",
        "Passwort vergessen",      "Wie ist das Wetter?",
        "opening hours",           "kontakt bitte"};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        int a = match(f, probe[i], NULL), b = match(g, probe[i], NULL);
        if (a != b && !(i == 5 && a == 3 && b == 3))
            same = false;
    }
    CHECK(same, "faq: 5 and 5000 entries give the same answers");
    CHECK(match(g, "thema4711 frage55", NULL) == 4711,
          "faq: a filler entry matches");
    /* stichwort49*, stichwort499* and stichwort4999* all match: a tie */
    CHECK(match(g, "Stichwort4999abc", NULL) == 49,
          "faq: among several matching prefixes the earliest entry wins");
    printf("# faq: 5000 entries: %zu phrases, %zu nodes\n", faq_phrases(g),
           faq_nodes(g));

    bool clean = true, completed = false;
    build_failing(0, &completed); /* count the allocations of a full run */
    long total = mem.calls;
    for (long k = 1; k <= total; k++)
        if (!build_failing(k, &completed)) {
            printf("# faq: allocation %ld: not clean (live %ld)\n", k,
                   mem.live);
            clean = false;
        }
    build_failing(0, &completed);
    printf("# faq: failed each of %ld allocations in turn\n", total);
    CHECK(clean && completed,
          "faq: every allocation failure is reported and leaks nothing");
    memset(&mem, 0, sizeof mem);
    struct faq *h = faq_new(counting_alloc, NULL);
    CHECK(h && add_base(h) == 0 && mem.live > 0,
          "faq: memory comes from the given allocator");
    faq_free(h);
    CHECK(mem.live == 0, "faq: and all of it goes back");

    double t5 = bench(f), t5000 = bench(g);
    printf("# faq: %.0f ns per message with 5 entries, %.0f ns with 5000\n", t5,
           t5000);
    CHECK(t5000 < t5 * 4 + 500, "faq: 5000 entries cost about the same as 5");

    faq_free(f);
    faq_free(g);
    faq_free(NULL);
    return CHECK_DONE();
}
