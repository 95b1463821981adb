/* error.h: libcairn's error codes and the thread's last error message.
 *
 * Functions return 0 or a negative number: either -errno or one of the
 * named codes below, which say what errno cannot.  When a function fails
 * it may also leave a sentence for people in cairn_last_error() (a
 * thread-local buffer, as libnbd does): "unknown ref 'foo'", "chunk 3f2a...
 * is corrupt: hash mismatch".  Adapters print that line, or cairn_strerror
 * of the code when no sentence was left.
 */
#ifndef CAIRN_ERROR_H
#define CAIRN_ERROR_H

enum {
  CAIRN_ENOTSTORE = -10001,     /* the path is not a cairn store */
  CAIRN_ENOREF = -10002,        /* no branch, tag or commit by that name */
  CAIRN_EAMBIGUOUS = -10003,    /* an id prefix matches several commits */
  CAIRN_EHELD = -10004,         /* another process writes the branch */
  CAIRN_EBADNAME = -10005,      /* not a valid branch, tag or volume name */
  CAIRN_EVERSION = -10006,      /* store format from a newer cairn */
  CAIRN_ENOVOLUME = -10007,     /* the commit or branch has no such volume */
};

/* A static description of a code (negative errno or CAIRN_E*). */
const char *cairn_strerror (int code);

/* The message the last failing libcairn call in this thread left, or ""
 * if none.  Valid until the next libcairn call in this thread. */
const char *cairn_last_error (void);

/* The sentence for a call that failed with CODE: the last message if it
 * was left with CODE, else cairn_strerror (CODE).  A message left with
 * another code belongs to an earlier failure that was handled (a tag
 * looked up before the commit that was found), not to this one. */
const char *cairn_error_for (int code);

/* Forgets the last message (callers that handle an error themselves). */
void cairn_clear_error (void);

/* Sets the thread's message, printf-style, and returns CODE, so that
 * library code can write: return cairn_error (-ENOENT, "no ref %s", n). */
int cairn_error (int code, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

#endif /* CAIRN_ERROR_H */
