/*
 * log.h - the libc-only logger.
 *
 * Every line is "prog[pid]: level: message\n", written to stderr with one
 * write(2) so lines from several processes sharing a stderr never interleave.
 * Lines longer than HS_LOG_LINE_MAX are cut.  The level comes from HS_LOG
 * (error|warn|info|debug, or 0..3), then -v/-q adjust it.  Not thread-safe in
 * its set-up calls; hs_log() itself is safe from any thread.
 */
#ifndef HS_LOG_H
#define HS_LOG_H

enum hs_log_level { HS_LOG_ERROR = 0, HS_LOG_WARN, HS_LOG_INFO, HS_LOG_DEBUG };

#define HS_LOG_LINE_MAX 2048

/* Set the program name (borrowed; must outlive logging) and the default level,
 * then apply HS_LOG from the environment if set.  An unparsable HS_LOG is
 * ignored with a warning. */
void hs_log_init(const char *prog, enum hs_log_level def);

/* Adjust the level by delta (each -v is +1, each -q is -1), clamped. */
void hs_log_adjust(int delta);

enum hs_log_level hs_log_level(void);
const char *hs_log_prog(void);

void hs_log(enum hs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define hs_error(...) hs_log(HS_LOG_ERROR, __VA_ARGS__)
#define hs_warn(...) hs_log(HS_LOG_WARN, __VA_ARGS__)
#define hs_info(...) \
	do { if (hs_log_level() >= HS_LOG_INFO) hs_log(HS_LOG_INFO, __VA_ARGS__); } while (0)
#define hs_debug(...) \
	do { if (hs_log_level() >= HS_LOG_DEBUG) hs_log(HS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
