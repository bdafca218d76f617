/*
 * log.c
 *	  Message reporting of libpgcrypttools.
 *
 * Owns: the log callback, result-code texts, error helpers.  The library
 * never prints: every message goes to the callback the tool installed.
 */
#include <errno.h>
#include <stdio.h>

#include "pct_internal.h"

static pct_log_fn log_fn;
static void *log_arg;

void
pct_set_log(pct_log_fn fn, void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

static void
report_va(pct_level level, const char *detail, const char *hint,
		  const char *fmt, va_list ap)
{
	char		msg[2048];

	if (log_fn == NULL)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_fn(log_arg, level, msg, detail, hint);
}

void
pct_report(pct_level level, const char *detail, const char *hint,
		   const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	report_va(level, detail, hint, fmt, ap);
	va_end(ap);
}

pct_rc
pct_fail(pct_rc rc, const char *detail, const char *hint, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	report_va(PCT_LOG_ERROR, detail, hint, fmt, ap);
	va_end(ap);
	return rc;
}

pct_rc
pct_syserr(const char *fmt,...)
{
	int			save_errno = errno;
	char		msg[2048];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pct_report(PCT_LOG_ERROR, NULL, NULL, "%s: %s", msg, strerror(save_errno));
	errno = save_errno;
	return save_errno == ENOMEM ? PCT_ERR_NOMEM : PCT_ERR_SYS;
}

pct_rc
pct_path(char *buf, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PCT_MAXPATH, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PCT_MAXPATH)
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "path too long: \"%.64s...\"",
						buf);
	return PCT_OK;
}

const char *
pct_rc_str(pct_rc rc)
{
	switch (rc)
	{
		case PCT_OK:
			return "success";
		case PCT_ERR_SYS:
			return "system error";
		case PCT_ERR_ARG:
			return "invalid argument";
		case PCT_ERR_FORMAT:
			return "damaged or unrecognised file";
		case PCT_ERR_KEY:
			return "wrong cluster key or damaged key file";
		case PCT_ERR_COMMAND:
			return "cluster key command failed";
		case PCT_ERR_STATE:
			return "cluster is not in a usable state";
		case PCT_ERR_BUSY:
			return "cluster is in use by another process";
		case PCT_ERR_NOMEM:
			return "out of memory";
		case PCT_ERR_INJECTED:
			return "stopped by fault injection";
		case PCT_ERR_STOPPED:
			return "stopped on request";
	}
	return "unknown error";
}
