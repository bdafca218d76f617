/*
 * lock.c
 *	  The lock file pg_cryptokeys/pg_alterckey.pid (FORMAT section 1).
 *
 * Owns: taking, releasing and inspecting the lock.  The file holds the
 * holder's PID as decimal text and a newline, as the format requires; a
 * patched server refuses to start while it exists.
 *
 * To tell a running holder from a dead one without trusting PIDs (which
 * are reused), the holder keeps an open-file-description lock (F_OFD_SETLK)
 * on the file for as long as it holds it; the kernel drops that lock when
 * the process dies, however it dies.  A lock file nobody has locked is
 * stale only if its PID is also gone: a live PID with no OFD lock may be a
 * tool that does not use OFD locks, so it counts as held.
 *
 * Taking the lock:
 *	1. write our PID to a temp file and OFD-lock it, so the lock file is
 *	   locked from the moment its name appears;
 *	2. link() it to the lock file name: this fails if a lock file exists;
 *	3. if one exists and is stale (step 4), rename() ours over it, after
 *	   checking that the name still points at the stale file we locked;
 *	4. stale = we can OFD-lock it ourselves and its PID is not running.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pct_internal.h"

/* Non-blocking OFD write lock on the whole file; true when taken. */
static bool
ofd_lock(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* Is some open file description holding a lock on fd's file? */
static bool
ofd_locked_by_other(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return true;			/* cannot tell: assume held */
	return fl.l_type != F_UNLCK;
}

/* PID from the lock file's contents, or 0 when it holds none. */
static pid_t
read_pid(int fd)
{
	char		buf[32];
	ssize_t		n;
	char	   *end;
	long		v;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || v <= 0 || v > 0x7fffffff ||
		(*end != '\n' && *end != '\0'))
		return 0;
	return (pid_t) v;
}

static bool
pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static bool
same_file(int fd, const char *path)
{
	struct stat a,
				b;

	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static pct_rc
write_tmp(const char *tmp, mode_t mode, int *fdp)
{
	char		buf[32];
	int			fd,
				len;

	(void) unlink(tmp);			/* our own leftover, same PID */
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return pct_syserr("could not create lock file \"%s\"", tmp);
	if (fchmod(fd, mode) != 0 || !ofd_lock(fd))
	{
		pct_rc		rc = pct_syserr("could not lock file \"%s\"", tmp);

		close(fd);
		unlink(tmp);
		return rc;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
	if (write(fd, buf, (size_t) len) != len ||
		pct_fsync_path(tmp, false) != PCT_OK)
	{
		pct_rc		rc = pct_syserr("could not write lock file \"%s\"", tmp);

		close(fd);
		unlink(tmp);
		return rc;
	}
	*fdp = fd;
	return PCT_OK;
}

pct_rc
pct_lock_acquire(const char *pgdata, bool take_stale, pct_lock *lock,
				 pid_t *other_pid)
{
	char		path[PCT_MAXPATH],
				tmp[PCT_MAXPATH];
	struct stat st;
	int			fd = -1;
	pct_rc		rc;

	lock->fd = -1;
	lock->path = NULL;
	*other_pid = 0;
	if ((rc = pct_path(path, "%s/%s/%s", pgdata, PCT_KEYDIR, PCT_LOCK_FILE)) != PCT_OK ||
		(rc = pct_path(tmp, "%s.%d.tmp", path, (int) getpid())) != PCT_OK)
		return rc;
	/* The lock file takes the mode of the key directory's files. */
	if (stat(pgdata, &st) != 0)
		return pct_syserr("could not stat \"%s\"", pgdata);
	if ((rc = write_tmp(tmp, (st.st_mode & S_IRGRP) ? PCT_FILE_MODE_GROUP :
						PCT_FILE_MODE, &fd)) != PCT_OK)
		return rc;

	for (int attempt = 0; attempt < 10; attempt++)
	{
		int			ofd;
		pid_t		pid;

		if (link(tmp, path) == 0)
		{
			unlink(tmp);
			goto taken;
		}
		if (errno != EEXIST)
		{
			rc = pct_syserr("could not create lock file \"%s\"", path);
			goto fail;
		}
		ofd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (ofd < 0)
		{
			if (errno == ENOENT)
				continue;		/* released meanwhile: try again */
			rc = pct_syserr("could not open lock file \"%s\"", path);
			goto fail;
		}
		pid = read_pid(ofd);
		*other_pid = pid;
		if (pid == 0 || !ofd_lock(ofd) || pid_alive(pid))
		{
			close(ofd);
			if (pid == 0)
				rc = pct_fail(PCT_ERR_BUSY, NULL,
							  "If no tool is working on this cluster, remove the lock file.",
							  "lock file \"%s\" exists but holds no process ID", path);
			else
				rc = pct_fail(PCT_ERR_BUSY, NULL,
							  "Wait for that process to finish.",
							  "lock file \"%s\" is held by process %d", path,
							  (int) pid);
			goto fail;
		}
		/* Nobody holds it and its process is gone: stale. */
		if (!same_file(ofd, path))
		{
			close(ofd);
			continue;			/* replaced meanwhile: look again */
		}
		if (!take_stale)
		{
			close(ofd);
			rc = pct_fail(PCT_ERR_STATE, NULL, NULL,
						  "lock file \"%s\" was left by process %d, which is no longer running",
						  path, (int) pid);
			goto fail;
		}
		if (rename(tmp, path) != 0)
		{
			rc = pct_syserr("could not rename \"%s\" to \"%s\"", tmp, path);
			close(ofd);
			goto fail;
		}
		close(ofd);
		pct_report(PCT_LOG_WARNING, NULL, NULL,
				   "removed stale lock file of process %d", (int) pid);
		goto taken;
	}
	rc = pct_fail(PCT_ERR_BUSY, NULL, NULL,
				  "could not take lock file \"%s\": it keeps changing", path);
fail:
	close(fd);
	unlink(tmp);
	return rc;

taken:
	if ((rc = pct_fsync_parent(path)) != PCT_OK)
	{
		unlink(path);
		close(fd);
		return rc;
	}
	lock->fd = fd;
	lock->path = strdup(path);
	if (lock->path == NULL)
	{
		unlink(path);
		close(fd);
		lock->fd = -1;
		return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
	}
	pct_durable_step("lock file created");
	return PCT_OK;
}

pct_rc
pct_lock_release(pct_lock *lock)
{
	pct_rc		rc = PCT_OK;

	if (lock->fd < 0)
		return PCT_OK;
	/* Remove the name only while it is still ours. */
	if (same_file(lock->fd, lock->path))
	{
		if (unlink(lock->path) != 0)
			rc = pct_syserr("could not remove lock file \"%s\"", lock->path);
		else
			rc = pct_fsync_parent(lock->path);
	}
	close(lock->fd);
	lock->fd = -1;
	free(lock->path);
	lock->path = NULL;
	if (rc == PCT_OK)
		pct_durable_step("lock file removed");
	return rc;
}

pct_rc
pct_lock_inspect(const char *pgdata, pct_lock_status *st, pid_t *pid)
{
	char		path[PCT_MAXPATH];
	int			fd;
	pct_rc		rc;

	*st = PCT_LOCK_FREE;
	*pid = 0;
	if ((rc = pct_path(path, "%s/%s/%s", pgdata, PCT_KEYDIR, PCT_LOCK_FILE)) != PCT_OK)
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return PCT_OK;
		return pct_syserr("could not open lock file \"%s\"", path);
	}
	*pid = read_pid(fd);
	if (ofd_locked_by_other(fd) || pid_alive(*pid))
		*st = PCT_LOCK_HELD;
	else
		*st = PCT_LOCK_STALE;
	close(fd);
	return PCT_OK;
}
