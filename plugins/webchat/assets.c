/*
 * assets.c - the demo page, embedded into webchat.so at build time.
 *
 * page.html, style.css and app.js are plain files next to this one (no
 * build step); `.incbin` copies them into .rodata, each followed by a NUL.
 * The paths are relative to the repository root, where make runs.  At
 * channel start wc_page_build() fills the page's {{title}}, {{style}} and
 * {{script}} markers, so the browser gets one self-contained document: the
 * page is served at "/" as well as "/hooks/<channel>", where relative asset
 * URLs would not resolve the same way.
 */
#include "webchat.h"

#include <stdlib.h>
#include <string.h>

/* .hidden: -fvisibility=hidden does not reach symbols defined in asm. */
#define EMBED(sym, file)                                                     \
    __asm__(".section .rodata\n"                                             \
            ".hidden " #sym "\n"                                             \
            ".type " #sym ", @object\n"                                      \
            ".balign 16\n" #sym ":\n"                                        \
            ".incbin \"" file "\"\n"                                         \
            ".byte 0\n"                                                      \
            ".previous\n");                                                  \
    extern const char sym[]

EMBED(wc_page_html, "plugins/webchat/page.html");
EMBED(wc_style_css, "plugins/webchat/style.css");
EMBED(wc_app_js, "plugins/webchat/app.js");

struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* The title goes into HTML text and an attribute: escape all five. */
static void put_escaped(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': put(b, "&amp;", 5); break;
        case '<': put(b, "&lt;", 4); break;
        case '>': put(b, "&gt;", 4); break;
        case '"': put(b, "&quot;", 6); break;
        case '\'': put(b, "&#39;", 5); break;
        default: put(b, s, 1);
        }
    }
}

int wc_page_build(const char *title, char **out, size_t *outlen)
{
    struct sbuf b = {0};
    const char *s = wc_page_html;
    while (*s) {
        const char *m = strstr(s, "{{");
        if (!m) {
            put(&b, s, strlen(s));
            break;
        }
        put(&b, s, (size_t)(m - s));
        if (strncmp(m, "{{title}}", 9) == 0) {
            put_escaped(&b, title);
            s = m + 9;
        } else if (strncmp(m, "{{style}}", 9) == 0) {
            put(&b, wc_style_css, strlen(wc_style_css));
            s = m + 9;
        } else if (strncmp(m, "{{script}}", 10) == 0) {
            put(&b, wc_app_js, strlen(wc_app_js));
            s = m + 10;
        } else {
            put(&b, m, 2);
            s = m + 2;
        }
    }
    if (b.failed || !b.p) {
        free(b.p);
        return FD_ENOMEM;
    }
    *out = b.p;
    *outlen = b.len;
    return FD_OK;
}
