/* error.c: error codes and the thread-local last error message. */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/error.h"

static __thread char last_error[1024];
static __thread int last_code;          /* the code LAST_ERROR came with */

const char *
cairn_strerror (int code)
{
  switch (code) {
  case CAIRN_ENOTSTORE: return "not a cairn store";
  case CAIRN_ENOREF: return "unknown ref";
  case CAIRN_EAMBIGUOUS: return "ambiguous id prefix";
  case CAIRN_EHELD: return "branch is held by another writer";
  case CAIRN_EBADNAME: return "invalid name";
  case CAIRN_EVERSION: return "store format is newer than this cairn";
  case CAIRN_ENOVOLUME: return "no such volume";
  case -EBADMSG: return "corrupt data";
  default: return code < 0 ? strerror (-code) : "success";
  }
}

const char *
cairn_last_error (void)
{
  return last_error;
}

const char *
cairn_error_for (int code)
{
  return *last_error && last_code == code ? last_error
    : cairn_strerror (code);
}

void
cairn_clear_error (void)
{
  last_error[0] = '\0';
  last_code = 0;
}

int
cairn_error (int code, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (last_error, sizeof last_error, fmt, ap);
  va_end (ap);
  last_code = code;
  return code;
}
