/* qmp.h: a small synchronous client of the QEMU Machine Protocol.
 *
 * One struct qmp is one connection to one QEMU's QMP unix socket, used by
 * one thread at a time.  Commands are sent one at a time and their reply
 * awaited; asynchronous events that arrive meanwhile are queued in order
 * and handed out by qmp_wait_event().  A file descriptor can ride along
 * with a command (SCM_RIGHTS), which is how "getfd" learns the fd that
 * "migrate fd:NAME" and "migrate-incoming fd:NAME" then use.
 *
 * Every function returns 0 or a negative errno and never prints or exits.
 * Transport errors are -ECONNRESET (QEMU closed the socket or exited),
 * -ETIMEDOUT (the deadline passed; the connection stays usable, a late
 * reply is recognised by its id and dropped), -EPROTO (QEMU sent
 * something that is not QMP) and -EMSGSIZE (a message over 64 MiB).  A command that QEMU answers with an error
 * returns -EREMOTEIO, and qmp_error() / qmp_error_class() give QEMU's
 * "desc" and "class" until the next command.
 *
 * Timeouts are in milliseconds; a negative timeout waits for ever.
 */
#ifndef CAIRN_QMP_H
#define CAIRN_QMP_H

#include <stdint.h>

#include <json-c/json.h>

struct qmp;

/* Connects to the QMP socket at PATH, reads QEMU's greeting and leaves
 * capabilities negotiation ("qmp_capabilities") done, so commands can be
 * sent at once.  While the socket does not exist or refuses connections
 * (QEMU still starting) it retries until TIMEOUT_MS.
 *   -ENAMETOOLONG  PATH does not fit in a sockaddr_un
 *   -ETIMEDOUT     nothing accepted the connection or greeted in time
 *   -EPROTO        the peer does not speak QMP
 *   -ECONNRESET    the peer closed the connection
 *   -ENOMEM        out of memory
 * other -errno from socket(2) or connect(2). */
int qmp_connect (const char *path, int timeout_ms, struct qmp **qmp);

/* Closes the connection, frees queued events.  QMP is NULL-safe. */
void qmp_close (struct qmp *qmp);

/* QEMU's version from the greeting, "7.2.22". */
const char *qmp_qemu_version (const struct qmp *qmp);

/* Runs COMMAND with arguments ARGS_JSON (a JSON object as text, or NULL
 * for none) and waits up to TIMEOUT_MS for its reply.  If REPLY is not
 * NULL it receives the "return" value, which the caller releases with
 * json_object_put(); it is set to NULL on every error.
 *   -EINVAL      ARGS_JSON is not a JSON object
 *   -EREMOTEIO   QEMU answered with an error: see qmp_error()
 * and the transport errors above. */
int qmp_execute (struct qmp *qmp, const char *command, const char *args_json,
                 struct json_object **reply, int timeout_ms);

/* The same with ARGS as a json-c object (borrowed, may be NULL): the way
 * to pass strings such as paths without quoting them by hand. */
int qmp_execute_object (struct qmp *qmp, const char *command,
                        struct json_object *args,
                        struct json_object **reply, int timeout_ms);

/* The same, sending file descriptor FD with the command (SCM_RIGHTS).
 * QEMU gets a duplicate: the caller still owns FD. */
int qmp_execute_with_fd (struct qmp *qmp, const char *command,
                         struct json_object *args, int fd,
                         struct json_object **reply, int timeout_ms);

/* "getfd": gives QEMU a duplicate of FD under NAME, for a later
 * "fd:NAME" migration URI (which consumes it) or "closefd". */
int qmp_getfd (struct qmp *qmp, const char *name, int fd, int timeout_ms);

/* The "desc" and "class" of the error QEMU answered the last command
 * with; "" if it did not.  Valid until the next command. */
const char *qmp_error (const struct qmp *qmp);
const char *qmp_error_class (const struct qmp *qmp);

/* Waits up to TIMEOUT_MS for the event called NAME (any event if NAME is
 * NULL), taking the oldest such one already queued first.  Other events
 * stay queued.  If EVENT is not NULL it receives the whole event object
 * ("event", "data", "timestamp"), released with json_object_put(); else
 * the event is dropped.  A timeout of 0 only looks at what has arrived.
 *   -ETIMEDOUT   no such event in time
 * and the transport errors above.  The queue holds at most
 * QMP_MAX_QUEUED_EVENTS events; beyond that the oldest are dropped. */
#define QMP_MAX_QUEUED_EVENTS 1024
int qmp_wait_event (struct qmp *qmp, const char *name, int timeout_ms,
                    struct json_object **event);

/* Drops every queued event called NAME (every event if NAME is NULL), so
 * that a following qmp_wait_event() sees only new ones.  Reads what has
 * already arrived on the socket first, without waiting. */
int qmp_discard_events (struct qmp *qmp, const char *name);

/* An event's timestamp in microseconds since the epoch (QEMU's clock),
 * or -1 if EVENT has none. */
long long qmp_event_time_us (struct json_object *event);

/* Deadlines in CLOCK_MONOTONIC milliseconds, -1 for none, as the QMP
 * client and the device-state transfer (vmstate.c) use them:
 * qmp_deadline is TIMEOUT_MS (-1: none) from now; qmp_left_ms the
 * milliseconds left, at least 0 (-1: none), for poll() or a command's
 * timeout; qmp_wait_fd waits until FD is ready for EVENTS, -ETIMEDOUT
 * after DEADLINE. */
int64_t qmp_deadline (int timeout_ms);
int qmp_left_ms (int64_t deadline);
int qmp_wait_fd (int fd, short events, int64_t deadline);

#endif /* CAIRN_QMP_H */
