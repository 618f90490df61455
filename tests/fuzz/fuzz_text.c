/* fuzz_text.c - libFuzzer target: the C text helpers behind fd.* and the
 * FAQ trie (normalisation, sensitive data, order numbers, tone, matching). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "faq.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud, (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char *norm = malloc(size + 1);
    if (!norm)
        return 0;
    size_t n = text_normalize(s, size, norm, size + 1);
    struct text_match m[16];
    text_find_sensitive(s, size, m, 16);
    text_is_iban(s, size);
    text_is_card(s, size);
    /* The first line is a set of FAQ phrases ('|'-separated), the rest the
     * message, so phrase compilation and matching both see fuzzed input. */
    const char *nl = memchr(s, '\n', size);
    struct faq *f = faq_new(alloc, NULL);
    if (f && nl) {
        const char *p = s;
        int entry = 0;
        while (p < nl) {
            const char *bar = memchr(p, '|', (size_t)(nl - p));
            const char *end = bar ? bar : nl;
            faq_add(f, p, (size_t)(end - p), entry++);
            p = end + 1;
        }
        int words;
        faq_match(f, nl + 1, size - (size_t)(nl + 1 - s), &words);
    }
    faq_free(f);
    text_has_phrase(norm, n, "oeffnungs zeit*", 15);
    free(norm);
    return 0;
}
