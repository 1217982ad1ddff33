/*
 * freescan.c -- LD_PRELOAD allocator scan for tests: before a heap block is freed (by free()
 * or by realloc() moving it), look for secrets in it and log every find.
 *
 * FREESCAN_PATTERNS  patterns separated by newlines (at most 16, each at most 64 KiB;
 *                    one that does not fit is logged as "pattern N too long")
 * FREESCAN_LOG       file the finds are appended to, one line each: "pattern N in B bytes"
 *
 * realloc() is done as malloc + copy + free, so a block realloc() leaves behind is scanned
 * as well.  The glibc entry points __libc_malloc/__libc_free do the real work.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define MAX_PATTERNS 16
#define MAX_PATTERN 65536

static char patterns[MAX_PATTERNS][MAX_PATTERN];
static size_t lengths[MAX_PATTERNS];
static int count = -1, logfd = -1;

static void setup(void)
{
    const char *spec = getenv("FREESCAN_PATTERNS"), *log = getenv("FREESCAN_LOG");

    count = 0;
    while (spec && *spec && count < MAX_PATTERNS) {
	size_t n = strcspn(spec, "\n");

	if (n >= MAX_PATTERN)
	    n = 0;	/* logged below, never silently dropped */
	memcpy(patterns[count], spec, n);
	lengths[count++] = n;
	spec += strcspn(spec, "\n");
	spec += *spec == '\n';
    }
    if (log)
	logfd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600);
    for (int i = 0; i < count; i++) {
	if (lengths[i] == 0 && logfd >= 0) {
	    char line[40];
	    int n = snprintf(line, sizeof line, "pattern %d too long\n", i);

	    if (n > 0 && write(logfd, line, (size_t)n) < 0)
		_exit(99);
	}
    }
}

static void scan(void *p)
{
    size_t size;
    int i;

    if (!p)
	return;
    if (count < 0)
	setup();
    size = malloc_usable_size(p);
    for (i = 0; i < count; i++) {
	if (lengths[i] && memmem(p, size, patterns[i], lengths[i])) {
	    char line[80];
	    int n = snprintf(line, sizeof line, "pattern %d in %zu bytes\n", i, size);

	    if (logfd >= 0 && n > 0 && write(logfd, line, (size_t)n) < 0)
		_exit(99);
	}
    }
}

void free(void *p)
{
    scan(p);
    __libc_free(p);
}

void *realloc(void *p, size_t n)
{
    void *q;
    size_t old;

    if (!p)
	return __libc_malloc(n);
    if (n == 0) {
	free(p);
	return NULL;
    }
    q = __libc_malloc(n);
    if (!q)
	return NULL;
    old = malloc_usable_size(p);
    memcpy(q, p, old < n ? old : n);
    free(p);
    return q;
}
