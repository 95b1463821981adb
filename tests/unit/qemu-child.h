/* qemu-child.h: for the unit tests that fork a real QEMU. */
#ifndef CAIRN_TEST_QEMU_CHILD_H
#define CAIRN_TEST_QEMU_CHILD_H

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

/* In a forked child: QEMU must not outlive a test that crashes, nor hold
 * its stdout (the TAP driver's pipe) open, or the suite would hang.  Its
 * output goes to LOG. */
static inline void
detach_child (const char *log)
{
  int fd;

  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () == 1)
    _exit (127);
  fd = open (log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || dup2 (fd, 1) < 0 || dup2 (fd, 2) < 0)
    _exit (127);
}

#endif /* CAIRN_TEST_QEMU_CHILD_H */
