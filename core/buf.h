/*
 * buf.h - a growable byte buffer with a hard maximum, for all untrusted input
 * (after curl's dynbuf).  The content is always NUL-terminated.
 */
#ifndef FRONTDESK_BUF_H
#define FRONTDESK_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len, cap, max;
};

void buf_init(struct buf *b, size_t max);
void buf_cleanup(struct buf *b);
void buf_reset(struct buf *b);
/* 0, or -1 when it would pass max (nothing appended) or memory ran out. */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_addstr(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the data to the caller (free() it) and resets the buffer. */
char *buf_take(struct buf *b);

#endif
