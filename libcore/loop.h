/*
 * loop.h - the single-threaded epoll event loop every daemon and client runs.
 *
 * One turn of hs_loop_run():
 *
 *   1. before-sleep hooks, in registration order (group commit lives here);
 *   2. deferred tasks queued with hs_loop_defer() (hs_conn flushes its
 *      output here, so every frame appended during the turn - including the
 *      replies a hook produced - leaves in one send per connection);
 *   3. if hs_loop_stop() was called: return;
 *   4. epoll_wait, with a timeout of 0 if a hook called hs_loop_wake_now()
 *      or a task is still queued, else up to the earliest timer;
 *   5. dispatch every ready fd, then every due timer.
 *
 * Fds are looked up in a table indexed by fd; each registration carries a
 * generation number in its epoll data, so an event already fetched for an fd
 * that a callback deleted (or deleted and re-added) in the same batch is
 * dropped instead of reaching a stale callback.
 *
 * Timers live in a binary heap keyed by (deadline, creation order) on
 * CLOCK_MONOTONIC with millisecond resolution; a timer id encodes its slot
 * and a generation, so cancel is O(log n) and cancelling a fired or unknown
 * id does nothing.  A callback may arm new timers; one armed with delay 0
 * from a timer callback fires in the next turn, never in the same pass.
 *
 * Nothing here is thread-safe except hs_loop_async_notify().
 */
#ifndef HS_LOOP_H
#define HS_LOOP_H

#include <stdint.h>

struct hs_loop;

/* Event bits for hs_loop_add_fd/mod_fd (request) and callbacks (revents). */
#define HS_EV_READ 0x1u
#define HS_EV_WRITE 0x2u
#define HS_EV_ERR 0x4u /* revents only; always reported */
#define HS_EV_HUP 0x8u /* revents only; always reported */

typedef void hs_fd_cb(struct hs_loop *l, int fd, uint32_t revents, void *arg);
typedef void hs_timer_cb(struct hs_loop *l, void *arg);
typedef void hs_signal_cb(struct hs_loop *l, int signo, void *arg);
typedef void hs_async_cb(struct hs_loop *l, void *arg);
typedef void hs_hook_cb(struct hs_loop *l, void *arg);

/* A deferred task: embed one in your object, hs_loop_defer() it as often as
 * you like; it runs once, in step 2 of the current (or next) turn.  Zeroed
 * memory is a valid idle task.  Owned by the caller; it must stay valid
 * while queued (hs_loop_defer_cancel() it before freeing). */
struct hs_defer {
	struct hs_defer *next;
	struct hs_defer **pprev; /* NULL when not queued */
	void (*fn)(struct hs_loop *l, struct hs_defer *d);
};

/* A new loop (epoll fd and the async eventfd, both CLOEXEC), or NULL with
 * errno set if the kernel refused them.  Free with hs_loop_free(). */
struct hs_loop *hs_loop_new(void);

/* Close the loop's own fds (epoll, eventfd, signalfds) and free it.  User
 * fds registered with hs_loop_add_fd() are not closed; queued tasks are
 * dropped without running; signals stay blocked.  NULL is a no-op. */
void hs_loop_free(struct hs_loop *l);

/* Watch fd (borrowed: the caller closes it, after hs_loop_del_fd) for
 * events (HS_EV_READ|HS_EV_WRITE, may be 0 to get only ERR/HUP).  Level
 * triggered.  Returns 0, -EEXIST if fd is already registered, -EINVAL for a
 * negative fd or NULL cb, or -errno from epoll_ctl. */
int hs_loop_add_fd(struct hs_loop *l, int fd, uint32_t events, hs_fd_cb *cb, void *arg);

/* Change the watched events of a registered fd.  0, -ENOENT, or -errno. */
int hs_loop_mod_fd(struct hs_loop *l, int fd, uint32_t events);

/* Stop watching fd.  Safe from any callback, including for an fd with an
 * event pending in the current batch: its callback will not run.  Call it
 * before close(fd).  0 or -ENOENT if fd was not registered. */
int hs_loop_del_fd(struct hs_loop *l, int fd);

/* Arm a one-shot timer firing cb(l, arg) after delay_ms (monotonic clock).
 * Returns its id, never 0.  Aborts on allocation failure like hs_xmalloc. */
uint64_t hs_loop_timer(struct hs_loop *l, uint64_t delay_ms, hs_timer_cb *cb, void *arg);

/* Disarm timer id.  Returns 0 if it was armed, -ENOENT if it had fired, was
 * cancelled, or never existed (0 included) - both are harmless. */
int hs_loop_timer_cancel(struct hs_loop *l, uint64_t id);

/* Block signos[0..n) (pthread_sigmask: call before starting threads, or
 * they may still receive them) and deliver them through a signalfd as
 * cb(l, signo, arg) in loop turns.  May be called more than once for
 * different signals.  0 or -errno. */
int hs_loop_signals(struct hs_loop *l, const int *signos, int n, hs_signal_cb *cb, void *arg);

/* Register cb(l, arg) to run in the loop thread after any
 * hs_loop_async_notify().  All registered callbacks run on each wake-up;
 * several notifies before the loop gets to them coalesce into one call.
 * Register from the loop thread before other threads may notify.  0. */
int hs_loop_async(struct hs_loop *l, hs_async_cb *cb, void *arg);

/* Wake the loop and make it run its async callbacks.  Thread-safe and
 * async-signal-safe (one eventfd write). */
void hs_loop_async_notify(struct hs_loop *l);

/* Run cb(l, arg) once every turn, after that turn's events and timers were
 * dispatched and before the loop may sleep.  Hooks run in registration
 * order.  0. */
int hs_loop_before_sleep(struct hs_loop *l, hs_hook_cb *cb, void *arg);

/* Make the next epoll_wait poll (timeout 0) instead of sleeping: for a hook
 * that left work for the next turn. */
void hs_loop_wake_now(struct hs_loop *l);

/* Queue d (borrowed, see struct hs_defer) to run d->fn once in step 2 of
 * this turn, or of the next turn if called from step 2 itself (the loop then
 * does not sleep).  Queuing an already queued task does nothing. */
void hs_loop_defer(struct hs_loop *l, struct hs_defer *d);

/* Unqueue d if queued. */
void hs_loop_defer_cancel(struct hs_loop *l, struct hs_defer *d);

/* Run turns until hs_loop_stop().  Returns 0, or -errno if epoll_wait
 * failed (EINTR is retried).  May be called again after it returned. */
int hs_loop_run(struct hs_loop *l);

/* Make hs_loop_run() return after the current turn's hooks and tasks ran
 * (so output appended before stopping is still flushed). */
void hs_loop_stop(struct hs_loop *l);

/* Clocks: monotonic milliseconds / microseconds, and wall-clock (realtime)
 * milliseconds since the epoch. */
uint64_t hs_now_ms(void);
uint64_t hs_now_us(void);
uint64_t hs_wall_ms(void);

#endif
