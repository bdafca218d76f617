/*
 * durable.c
 *	  Durable file operations and the fault-injection hook.
 *
 * Owns: fsync of files and directories, durable new files (temp file,
 * fsync, rename, fsync of the directory), durable rename and removal, and
 * pct_durable_step(), which counts the durable steps of an operation so
 * that tests can stop a tool right after any one of them.
 *
 * The order follows PostgreSQL's file_utils.c: a file's data is durable
 * before its name points at it, and a directory is fsynced after every
 * change of its entries.  A failed fsync is fatal and never retried: after
 * a failure the kernel may have dropped the dirty pages.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pct_internal.h"

static bool sync_on = true;
static int	step_count;

void
pct_set_sync(bool on)
{
	sync_on = on;
}

bool
pct_sync_enabled(void)
{
	return sync_on;
}

int
pct_durable_step(const char *name)
{
	const char *at = getenv("PCT_FAULT_STEP");
	const char *delay = getenv("PCT_STEP_DELAY_MS");

	step_count++;
	if (getenv("PCT_FAULT_LIST") != NULL)
		fprintf(stderr, "fault step %d: %s\n", step_count, name);
	if (at != NULL && atoi(at) == step_count)
	{
		pct_report(PCT_LOG_ERROR, NULL, NULL,
				   "fault injection: stopping after durable step %d (%s)",
				   step_count, name);
		_exit(PCT_FAULT_EXIT);
	}
	/* Widen the window between steps for kill -9 tests. */
	if (delay != NULL && atoi(delay) > 0)
		usleep((useconds_t) atoi(delay) * 1000);
	return step_count;
}

pct_rc
pct_fsync_path(const char *path, bool is_dir)
{
	int			fd;

	if (!sync_on)
		return PCT_OK;
	fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return pct_syserr("could not open \"%s\" for fsync", path);
	if (fsync(fd) != 0)
	{
		pct_rc		rc = pct_syserr("could not fsync \"%s\"", path);

		close(fd);
		return rc;
	}
	if (close(fd) != 0)
		return pct_syserr("could not close \"%s\"", path);
	return PCT_OK;
}

/* Copy the directory part of path into dir (PCT_MAXPATH). */
static pct_rc
parent_of(const char *path, char *dir)
{
	char		tmp[PCT_MAXPATH];
	pct_rc		rc;

	if ((rc = pct_path(tmp, "%s", path)) != PCT_OK)
		return rc;
	return pct_path(dir, "%s", dirname(tmp));
}

pct_rc
pct_fsync_parent(const char *path)
{
	char		dir[PCT_MAXPATH];
	pct_rc		rc;

	if ((rc = parent_of(path, dir)) != PCT_OK)
		return rc;
	return pct_fsync_path(dir, true);
}

/* Write all of buf, retrying short writes and EINTR. */
static pct_rc
write_all(int fd, const void *buf, size_t len, const char *path)
{
	const uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pct_syserr("could not write file \"%s\"", path);
		if (n == 0)
		{
			errno = ENOSPC;
			return pct_syserr("could not write file \"%s\"", path);
		}
		p += n;
		len -= (size_t) n;
	}
	return PCT_OK;
}

pct_rc
pct_durable_write(const char *path, const void *data, size_t len, mode_t mode)
{
	char		tmp[PCT_MAXPATH];
	int			fd;
	pct_rc		rc;

	if ((rc = pct_path(tmp, "%s.tmp.%d", path, (int) getpid())) != PCT_OK)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return pct_syserr("could not create file \"%s\"", tmp);
	/* The umask must not narrow or widen what the format asks for. */
	if (fchmod(fd, mode) != 0)
		rc = pct_syserr("could not set permissions of file \"%s\"", tmp);
	if (rc == PCT_OK)
		rc = write_all(fd, data, len, tmp);
	if (rc == PCT_OK && sync_on && fsync(fd) != 0)
		rc = pct_syserr("could not fsync file \"%s\"", tmp);
	if (close(fd) != 0 && rc == PCT_OK)
		rc = pct_syserr("could not close file \"%s\"", tmp);
	if (rc == PCT_OK && rename(tmp, path) != 0)
		rc = pct_syserr("could not rename file \"%s\" to \"%s\"", tmp, path);
	if (rc != PCT_OK)
	{
		(void) unlink(tmp);
		return rc;
	}
	return pct_fsync_parent(path);
}

pct_rc
pct_durable_rename(const char *oldpath, const char *newpath)
{
	struct stat st;
	char		olddir[PCT_MAXPATH],
				newdir[PCT_MAXPATH];
	pct_rc		rc;

	if (lstat(oldpath, &st) != 0)
		return pct_syserr("could not stat \"%s\"", oldpath);
	/* The object's own contents first (for a directory: its entries). */
	if ((rc = pct_fsync_path(oldpath, S_ISDIR(st.st_mode))) != PCT_OK)
		return rc;
	if (rename(oldpath, newpath) != 0)
		return pct_syserr("could not rename \"%s\" to \"%s\"", oldpath, newpath);
	if ((rc = parent_of(oldpath, olddir)) != PCT_OK ||
		(rc = parent_of(newpath, newdir)) != PCT_OK)
		return rc;
	if ((rc = pct_fsync_path(newdir, true)) != PCT_OK)
		return rc;
	if (strcmp(olddir, newdir) != 0)
		rc = pct_fsync_path(olddir, true);
	return rc;
}

pct_rc
pct_durable_remove(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return pct_syserr("could not stat \"%s\"", path);
	if (S_ISDIR(st.st_mode) ? rmdir(path) != 0 : unlink(path) != 0)
		return pct_syserr("could not remove \"%s\"", path);
	return pct_fsync_parent(path);
}

/* Remove the contents of dir and dir itself; symlinks are removed, never
 * followed. */
static pct_rc
rmtree_nosync(const char *dir)
{
	DIR		   *d;
	struct dirent *de;
	pct_rc		rc = PCT_OK;

	d = opendir(dir);
	if (d == NULL)
		return pct_syserr("could not open directory \"%s\"", dir);
	while (rc == PCT_OK && (errno = 0, de = readdir(d)) != NULL)
	{
		char		p[PCT_MAXPATH];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((rc = pct_path(p, "%s/%s", dir, de->d_name)) != PCT_OK)
			break;
		if (lstat(p, &st) != 0)
			rc = pct_syserr("could not stat \"%s\"", p);
		else if (S_ISDIR(st.st_mode))
			rc = rmtree_nosync(p);
		else if (unlink(p) != 0)
			rc = pct_syserr("could not remove file \"%s\"", p);
	}
	if (rc == PCT_OK && errno != 0)
		rc = pct_syserr("could not read directory \"%s\"", dir);
	closedir(d);
	if (rc == PCT_OK && rmdir(dir) != 0)
		rc = pct_syserr("could not remove directory \"%s\"", dir);
	return rc;
}

pct_rc
pct_durable_rmtree(const char *path)
{
	pct_rc		rc = rmtree_nosync(path);

	if (rc != PCT_OK)
		return rc;
	return pct_fsync_parent(path);
}

pct_rc
pct_durable_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0)
		return pct_syserr("could not create directory \"%s\"", path);
	if (chmod(path, mode) != 0)
		return pct_syserr("could not set permissions of directory \"%s\"", path);
	return pct_fsync_parent(path);
}

pct_rc
pct_read_file(const char *path, void *buf, size_t maxlen, size_t *len)
{
	int			fd;
	size_t		got = 0;
	uint8_t		extra;
	pct_rc		rc = PCT_OK;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return pct_syserr("could not open file \"%s\"", path);
	for (;;)
	{
		ssize_t		n;

		if (got < maxlen)
			n = read(fd, (uint8_t *) buf + got, maxlen - got);
		else
			n = read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = pct_syserr("could not read file \"%s\"", path);
			break;
		}
		if (n == 0)
			break;
		if (got >= maxlen)
		{
			rc = pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						  "file \"%s\" is larger than %zu bytes", path, maxlen);
			break;
		}
		got += (size_t) n;
	}
	close(fd);
	*len = got;
	return rc;
}
