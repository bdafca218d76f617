/*
 * config.c
 *	  Reading and changing the configuration files of a cluster.
 *
 * Owns: pct_config_get(), pct_config_set() and pct_config_quote(): the
 * reader of postgresql.conf and postgresql.auto.conf and the line editor
 * that changes them.
 *
 * The reader follows PostgreSQL 15's configuration file reader so that a
 * value found here is the value the server uses:
 *
 * 1. $PGDATA/postgresql.conf is read (it must exist), then
 *	  $PGDATA/postgresql.auto.conf (skipped when missing); the last setting
 *	  of a name wins.  Names compare case-insensitively (ASCII).
 * 2. A line is empty, a comment (#...), or "name [=] value [# comment]".
 *	  The tokens are those of the server's lexer, with its longest-match
 *	  rules: a name is an identifier or one qualified "a.b" identifier; a
 *	  value is an identifier, a number (with unit letters), an unquoted
 *	  string (letters, digits, "_", "-", ".", ":", "/" after a letter) or a
 *	  single-quoted string in which '' is a quote and \b \f \n \r \t, \ooo
 *	  (octal) and \x (any other x: x itself) are escapes.  Anything else on
 *	  the line is a syntax error, reported with the file and line.
 * 3. include 'f' reads f (it must exist), include_if_exists 'f' reads f
 *	  when it can be opened, include_dir 'd' reads the files of d whose
 *	  names end in ".conf" and do not start with ".", in strcmp() order.
 *	  Relative names are relative to the directory of the including file.
 *	  A file including itself, and nesting deeper than 10 levels, are
 *	  errors.
 *
 * Every token lies on one line, so every setting is exactly one line of
 * one file: pct_config_set() replaces or removes whole lines and keeps
 * every other byte of the file as it was.  A file read more than once
 * (included twice) is loaded once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pct_internal.h"

/* The server's CONF_FILE_MAX_DEPTH. */
#define CONF_MAX_DEPTH		10
/* Refuse configuration files larger than this (a damaged file, surely). */
#define CONF_MAX_FILE_SIZE	((size_t) 256 * 1024 * 1024)
/* Longest token quoted back in a syntax error. */
#define CONF_MAX_ERROR_TOKEN 200

#define CONF_MAIN_FILE		"postgresql.conf"
#define CONF_AUTO_FILE		"postgresql.auto.conf"

/* Tokens of the server's configuration lexer. */
typedef enum tok_type
{
	TOK_EOF = 0,
	TOK_ID,
	TOK_QUALIFIED_ID,
	TOK_STRING,
	TOK_UNQUOTED_STRING,
	TOK_INTEGER,
	TOK_REAL,
	TOK_EQUALS,
	TOK_EOL,
	TOK_ERROR
} tok_type;

typedef struct lexer
{
	const char *buf;
	size_t		len;
	size_t		pos;			/* where the next token starts looking */
	int			line;			/* line number at pos */
	size_t		line_start;		/* offset of the line at pos */
	/* the current token */
	tok_type	type;
	size_t		start;
	size_t		end;
	int			tok_line;
} lexer;

/* A configuration file, loaded once. */
typedef struct conf_file
{
	char	   *path;			/* absolute, canonical */
	char	   *data;			/* contents (NUL-terminated copy) */
	size_t		len;
} conf_file;

/* One line that sets the name asked for. */
typedef struct conf_item
{
	int			file;			/* index into files */
	int			line;
	size_t		line_start;		/* offset of the line's first byte */
	size_t		line_end;		/* offset of its '\n' (or of the end) */
	size_t		value_end;		/* offset just past the value token */
	char	   *value;			/* decoded */
} conf_item;

typedef struct conf_state
{
	const char *name;			/* the setting looked for */
	conf_file  *files;
	int			nfiles;
	int			maxfiles;
	conf_item  *items;
	int			nitems;
	int			maxitems;
} conf_state;

/* A growing byte buffer. */
typedef struct strbuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} strbuf;

static pct_rc parse_file(conf_state *st, const char *config_file, bool strict,
						 const char *calling_file, int calling_line,
						 int depth);

/* ---- small helpers ---- */

static pct_rc
nomem(void)
{
	return pct_fail(PCT_ERR_NOMEM, NULL, NULL, "out of memory");
}

static pct_rc
sb_append(strbuf *sb, const char *data, size_t len)
{
	if (len > SIZE_MAX - sb->len - 1)
		return nomem();
	if (sb->len + len + 1 > sb->cap)
	{
		size_t		cap = sb->cap ? sb->cap : 256;
		char	   *p;

		while (cap < sb->len + len + 1)
		{
			if (cap > SIZE_MAX / 2)
			{
				cap = sb->len + len + 1;
				break;
			}
			cap *= 2;
		}
		p = realloc(sb->data, cap);
		if (p == NULL)
			return nomem();
		sb->data = p;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
	return PCT_OK;
}

static bool
is_letter(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		c >= 0x80;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_letter_or_digit(unsigned char c)
{
	return is_letter(c) || is_digit(c);
}

static bool
is_ascii_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_hex_digit(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
is_blank_name(const char *s)
{
	return strspn(s, " \t\r\n") == strlen(s);
}

/* Case-insensitive (ASCII only) comparison of a token with a name, as the
 * server's guc_name_compare(). */
static bool
name_equal(const char *tok, size_t toklen, const char *name)
{
	size_t		i;

	for (i = 0; i < toklen; i++)
	{
		unsigned char a = (unsigned char) tok[i];
		unsigned char b = (unsigned char) name[i];

		if (b == '\0')
			return false;
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char) (a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (unsigned char) (b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return name[toklen] == '\0';
}

/* ---- paths ---- */

/*
 * Canonical form of an absolute path: no "//", no "." components, ".."
 * removed with the component before it, no trailing "/".  Lexical, as the
 * server's canonicalize_path().  malloc'd; NULL when out of memory.
 */
static char *
canonical_path(const char *path)
{
	size_t		n = strlen(path);
	char	   *out = malloc(n + 2);
	size_t		o = 0;
	const char *p = path;

	if (out == NULL)
		return NULL;
	out[o++] = '/';
	while (*p != '\0')
	{
		const char *q;
		size_t		len;

		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		q = p;
		while (*q != '\0' && *q != '/')
			q++;
		len = (size_t) (q - p);
		if (len == 1 && p[0] == '.')
			;
		else if (len == 2 && p[0] == '.' && p[1] == '.')
		{
			while (o > 1 && out[o - 1] != '/')
				o--;
			if (o > 1)
				o--;			/* the slash before the removed component */
		}
		else
		{
			if (o > 1)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p = q;
	}
	out[o] = '\0';
	return out;
}

/*
 * Absolute location of a configuration file or directory named in
 * calling_file (or, when calling_file is NULL, relative to base), as the
 * server's AbsoluteConfigLocation().  malloc'd; NULL when out of memory.
 */
static char *
absolute_location(const char *location, const char *calling_file,
				  const char *base)
{
	strbuf		sb = {0};
	char	   *result;

	if (location[0] == '/')
		return canonical_path(location);
	if (calling_file != NULL)
	{
		const char *slash = strrchr(calling_file, '/');

		if (sb_append(&sb, calling_file,
					  slash ? (size_t) (slash - calling_file) : 0) != PCT_OK)
			return NULL;
	}
	else if (sb_append(&sb, base, strlen(base)) != PCT_OK)
		return NULL;
	if (sb_append(&sb, "/", 1) != PCT_OK ||
		sb_append(&sb, location, strlen(location)) != PCT_OK ||
		sb.data == NULL)
	{
		free(sb.data);
		return NULL;
	}
	result = canonical_path(sb.data);
	free(sb.data);
	return result;
}

/* The data directory as a canonical absolute path (malloc'd). */
static pct_rc
absolute_pgdata(const char *pgdata, char **out)
{
	strbuf		sb = {0};
	pct_rc		rc;

	if (pgdata[0] != '/')
	{
		char	   *cwd = getcwd(NULL, 0);

		if (cwd == NULL)
			return pct_syserr("could not identify current directory");
		rc = sb_append(&sb, cwd, strlen(cwd));
		free(cwd);
		if (rc == PCT_OK)
			rc = sb_append(&sb, "/", 1);
		if (rc != PCT_OK)
		{
			free(sb.data);
			return rc;
		}
	}
	if ((rc = sb_append(&sb, pgdata, strlen(pgdata))) != PCT_OK ||
		sb.data == NULL)
	{
		free(sb.data);
		return rc != PCT_OK ? rc : nomem();
	}
	*out = canonical_path(sb.data);
	free(sb.data);
	return *out ? PCT_OK : nomem();
}

/* ---- the lexer ---- */

/* Length of the INTEGER token at p, 0 if none:
 * [-+]?([0-9]+|0x[0-9a-fA-F]+)[a-zA-Z]* */
static size_t
match_integer(const lexer *lx, size_t p)
{
	const char *b = lx->buf;
	size_t		len = lx->len;
	size_t		q = p,
				r,
				best = 0;

	if (q < len && (b[q] == '-' || b[q] == '+'))
		q++;
	r = q;
	while (r < len && is_digit((unsigned char) b[r]))
		r++;
	if (r > q)
	{
		while (r < len && is_ascii_alpha((unsigned char) b[r]))
			r++;
		best = r - p;
	}
	if (q + 1 < len && b[q] == '0' && b[q + 1] == 'x')
	{
		size_t		h = q + 2;

		r = h;
		while (r < len && is_hex_digit((unsigned char) b[r]))
			r++;
		if (r > h)
		{
			while (r < len && is_ascii_alpha((unsigned char) b[r]))
				r++;
			if (r - p > best)
				best = r - p;
		}
	}
	return best;
}

/* Length of the REAL token at p, 0 if none:
 * [-+]?[0-9]*"."[0-9]*([Ee][-+]?[0-9]+)? */
static size_t
match_real(const lexer *lx, size_t p)
{
	const char *b = lx->buf;
	size_t		len = lx->len;
	size_t		q = p;

	if (q < len && (b[q] == '-' || b[q] == '+'))
		q++;
	while (q < len && is_digit((unsigned char) b[q]))
		q++;
	if (q >= len || b[q] != '.')
		return 0;
	q++;
	while (q < len && is_digit((unsigned char) b[q]))
		q++;
	if (q < len && (b[q] == 'e' || b[q] == 'E'))
	{
		size_t		r = q + 1,
					d;

		if (r < len && (b[r] == '-' || b[r] == '+'))
			r++;
		d = r;
		while (r < len && is_digit((unsigned char) b[r]))
			r++;
		if (r > d)
			q = r;
	}
	return q - p;
}

/* Length of the STRING token at p (a quote), 0 if none:
 * '([^'\\\n]|\\.|'')*'  -- the longest complete match. */
static size_t
match_string(const lexer *lx, size_t p)
{
	const char *b = lx->buf;
	size_t		len = lx->len;
	size_t		q = p + 1,
				last = 0;

	while (q < len && b[q] != '\n')
	{
		if (b[q] == '\\')
		{
			if (q + 1 >= len || b[q + 1] == '\n')
				break;
			q += 2;
		}
		else if (b[q] == '\'')
		{
			q++;
			last = q - p;		/* a complete string ends here */
			if (q < len && b[q] == '\'')
				q++;			/* '' : a quote inside, go on */
			else
				break;
		}
		else
			q++;
	}
	return last;
}

/* Lengths of a letter-led token at p: *id of the identifier, *unquoted of
 * the unquoted string, *qualified of "id.id" (0 if it does not match). */
static void
match_word(const lexer *lx, size_t p, size_t *id, size_t *unquoted,
		   size_t *qualified)
{
	const char *b = lx->buf;
	size_t		len = lx->len;
	size_t		q = p;

	while (q < len && is_letter_or_digit((unsigned char) b[q]))
		q++;
	*id = q - p;
	*qualified = 0;
	if (q + 1 < len && b[q] == '.' && is_letter((unsigned char) b[q + 1]))
	{
		size_t		r = q + 1;

		while (r < len && is_letter_or_digit((unsigned char) b[r]))
			r++;
		*qualified = r - p;
	}
	while (q < len && (is_letter_or_digit((unsigned char) b[q]) ||
					   b[q] == '-' || b[q] == '.' || b[q] == '_' ||
					   b[q] == ':' || b[q] == '/'))
		q++;
	*unquoted = q - p;
}

static void
lexer_init(lexer *lx, const char *buf, size_t len)
{
	memset(lx, 0, sizeof(*lx));
	lx->buf = buf;
	lx->len = len;
	lx->line = 1;
}

/* Read the next token into lx->type/start/end/tok_line.  Ties between
 * rules of equal length go to the earlier rule, as in flex. */
static tok_type
lexer_next(lexer *lx)
{
	const char *b = lx->buf;
	unsigned char c;
	size_t		n = 0;

	for (;;)
	{
		if (lx->pos >= lx->len)
		{
			lx->type = TOK_EOF;
			lx->start = lx->end = lx->len;
			lx->tok_line = lx->line;
			return lx->type;
		}
		c = (unsigned char) b[lx->pos];
		if (c == ' ' || c == '\t' || c == '\r')
			lx->pos++;
		else if (c == '#')
		{
			while (lx->pos < lx->len && b[lx->pos] != '\n')
				lx->pos++;
		}
		else
			break;
	}

	lx->start = lx->pos;
	lx->tok_line = lx->line;
	if (c == '\n')
	{
		lx->type = TOK_EOL;
		n = 1;
		lx->line++;
		lx->line_start = lx->pos + 1;
	}
	else if (c == '=')
	{
		lx->type = TOK_EQUALS;
		n = 1;
	}
	else if (c == '\'')
	{
		n = match_string(lx, lx->pos);
		lx->type = n > 0 ? TOK_STRING : TOK_ERROR;
		if (n == 0)
			n = 1;
	}
	else if (is_letter(c))
	{
		size_t		id,
					unquoted,
					qualified;

		match_word(lx, lx->pos, &id, &unquoted, &qualified);
		n = unquoted;
		if (unquoted == id)
			lx->type = TOK_ID;
		else if (unquoted == qualified)
			lx->type = TOK_QUALIFIED_ID;
		else
			lx->type = TOK_UNQUOTED_STRING;
	}
	else
	{
		size_t		ni = match_integer(lx, lx->pos);
		size_t		nr = match_real(lx, lx->pos);

		if (ni == 0 && nr == 0)
		{
			lx->type = TOK_ERROR;
			n = 1;
		}
		else if (ni >= nr)
		{
			lx->type = TOK_INTEGER;
			n = ni;
		}
		else
		{
			lx->type = TOK_REAL;
			n = nr;
		}
	}
	lx->pos += n;
	lx->end = lx->pos;
	return lx->type;
}

/*
 * Decode a STRING token (quotes included) as the server's
 * DeescapeQuotedString(): '' is a quote; \b \f \n \r \t; \ooo octal (one
 * to three digits); \x is x.  A decoded NUL ends the value, as it ends the
 * server's C string.  malloc'd; NULL when out of memory.
 */
static char *
deescape_string(const char *tok, size_t len)
{
	char	   *out = malloc(len);
	char	   *o = out;
	size_t		i;

	if (out == NULL)
		return NULL;
	for (i = 1; i + 1 < len; i++)
	{
		char		c = tok[i];

		if (c == '\\')
		{
			i++;
			switch (tok[i])
			{
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				case '0':
				case '1':
				case '2':
				case '3':
				case '4':
				case '5':
				case '6':
				case '7':
					{
						unsigned	v = 0;
						int			k;

						for (k = 0; k < 3 && tok[i + k] >= '0' &&
							 tok[i + k] <= '7'; k++)
							v = (v << 3) + (unsigned) (tok[i + k] - '0');
						i += (size_t) k - 1;
						c = (char) (unsigned char) v;
					}
					break;
				default:
					c = tok[i];
					break;
			}
		}
		else if (c == '\'' && tok[i + 1] == '\'')
			i++;
		*o++ = c;
	}
	*o = '\0';
	return out;
}

/* ---- loading files ---- */

/* Index of the loaded file path, or -1. */
static int
find_file(const conf_state *st, const char *path)
{
	int			i;

	for (i = 0; i < st->nfiles; i++)
		if (strcmp(st->files[i].path, path) == 0)
			return i;
	return -1;
}

/*
 * Load a file (once).  When it cannot be opened, *open_errno is set and
 * nothing is reported; read errors are reported.
 */
static pct_rc
load_file(conf_state *st, const char *path, int *index, int *open_errno)
{
	strbuf		sb = {0};
	conf_file  *f;
	int			fd;
	pct_rc		rc = PCT_OK;

	*open_errno = 0;
	if ((*index = find_file(st, path)) >= 0)
		return PCT_OK;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		*open_errno = errno;
		return PCT_OK;
	}
	for (;;)
	{
		char		chunk[65536];
		ssize_t		n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = pct_syserr("could not read configuration file \"%s\"", path);
			break;
		}
		if (n == 0)
			break;
		if (sb.len + (size_t) n > CONF_MAX_FILE_SIZE)
		{
			rc = pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						  "configuration file \"%s\" is too large", path);
			break;
		}
		if ((rc = sb_append(&sb, chunk, (size_t) n)) != PCT_OK)
			break;
	}
	close(fd);
	if (rc == PCT_OK && sb.data == NULL)
		rc = sb_append(&sb, "", 0);
	if (rc != PCT_OK)
	{
		free(sb.data);
		return rc;
	}

	if (st->nfiles == st->maxfiles)
	{
		int			max = st->maxfiles ? st->maxfiles * 2 : 8;
		conf_file  *p = realloc(st->files, (size_t) max * sizeof(*p));

		if (p == NULL)
		{
			free(sb.data);
			return nomem();
		}
		st->files = p;
		st->maxfiles = max;
	}
	f = &st->files[st->nfiles];
	f->path = strdup(path);
	if (f->path == NULL)
	{
		free(sb.data);
		return nomem();
	}
	f->data = sb.data;
	f->len = sb.len;
	*index = st->nfiles++;
	return PCT_OK;
}

static pct_rc
add_item(conf_state *st, const conf_item *item)
{
	if (st->nitems == st->maxitems)
	{
		int			max = st->maxitems ? st->maxitems * 2 : 8;
		conf_item  *p = realloc(st->items, (size_t) max * sizeof(*p));

		if (p == NULL)
			return nomem();
		st->items = p;
		st->maxitems = max;
	}
	st->items[st->nitems++] = *item;
	return PCT_OK;
}

static void
conf_state_free(conf_state *st)
{
	int			i;

	for (i = 0; i < st->nfiles; i++)
	{
		free(st->files[i].path);
		free(st->files[i].data);
	}
	for (i = 0; i < st->nitems; i++)
		free(st->items[i].value);
	free(st->files);
	free(st->items);
	memset(st, 0, sizeof(*st));
}

/* ---- the parser ---- */

static pct_rc
syntax_error(const char *path, const lexer *lx)
{
	if (lx->type == TOK_EOL || lx->type == TOK_EOF)
		return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
						"syntax error in file \"%s\" line %d, near end of line",
						path, lx->tok_line);
	return pct_fail(PCT_ERR_FORMAT, NULL, NULL,
					"syntax error in file \"%s\" line %d, near token \"%.*s\"",
					path, lx->tok_line,
					(int) (lx->end - lx->start > CONF_MAX_ERROR_TOKEN ?
						   CONF_MAX_ERROR_TOKEN : lx->end - lx->start),
					lx->buf + lx->start);
}

/* A directive's detail line: where it is. */
static void
where_detail(char *buf, size_t size, const char *calling_file, int line)
{
	if (calling_file != NULL)
		snprintf(buf, size, "Included from file \"%s\" line %d.",
				 calling_file, line);
	else
		buf[0] = '\0';
}

static int
compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* include_dir: the .conf files of a directory, in strcmp() order. */
static pct_rc
parse_dir(conf_state *st, const char *includedir, const char *calling_file,
		  int calling_line, int depth)
{
	char		detail[PCT_MAXPATH + 64];
	char	   *directory;
	char	  **names = NULL;
	size_t		nnames = 0,
				maxnames = 0,
				i;
	DIR		   *d;
	struct dirent *de;
	pct_rc		rc = PCT_OK;

	where_detail(detail, sizeof(detail), calling_file, calling_line);
	if (is_blank_name(includedir))
		return pct_fail(PCT_ERR_FORMAT, detail[0] ? detail : NULL, NULL,
						"empty configuration directory name: \"%s\"",
						includedir);
	/* Recursion and depth are checked for each file, as the server does. */
	directory = absolute_location(includedir, calling_file, "/");
	if (directory == NULL)
		return nomem();
	d = opendir(directory);
	if (d == NULL)
	{
		int			save_errno = errno;

		rc = pct_fail(save_errno == ENOMEM ? PCT_ERR_NOMEM : PCT_ERR_SYS,
					  detail[0] ? detail : NULL, NULL,
					  "could not open configuration directory \"%s\": %s",
					  directory, strerror(save_errno));
		free(directory);
		return rc;
	}
	while ((errno = 0, de = readdir(d)) != NULL)
	{
		size_t		len = strlen(de->d_name);
		char	   *path;
		struct stat sb;

		if (len < 6 || de->d_name[0] == '.' ||
			strcmp(de->d_name + len - 5, ".conf") != 0)
			continue;
		if (asprintf(&path, "%s/%s", directory, de->d_name) < 0)
		{
			rc = nomem();
			break;
		}
		if (stat(path, &sb) != 0)
		{
			rc = pct_syserr("could not stat file \"%s\"", path);
			free(path);
			break;
		}
		if (S_ISDIR(sb.st_mode))
		{
			free(path);
			continue;
		}
		if (nnames == maxnames)
		{
			size_t		max = maxnames ? maxnames * 2 : 16;
			char	  **p = realloc(names, max * sizeof(*p));

			if (p == NULL)
			{
				free(path);
				rc = nomem();
				break;
			}
			names = p;
			maxnames = max;
		}
		names[nnames++] = path;
	}
	if (rc == PCT_OK && errno != 0)
		rc = pct_syserr("could not read configuration directory \"%s\"",
						directory);
	closedir(d);

	if (rc == PCT_OK && nnames > 0)
		qsort(names, nnames, sizeof(*names), compare_strings);
	for (i = 0; rc == PCT_OK && i < nnames; i++)
		rc = parse_file(st, names[i], true, calling_file, calling_line, depth);

	for (i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(directory);
	return rc;
}

/* The lines of one loaded file. */
static pct_rc
parse_lines(conf_state *st, int index, int depth)
{
	const char *path = st->files[index].path;	/* stable across reallocs */
	lexer		lx;

	lexer_init(&lx, st->files[index].data, st->files[index].len);
	for (;;)
	{
		size_t		name_start,
					name_len,
					line_start;
		int			line;
		tok_type	value_type;
		size_t		value_start,
					value_end;
		char	   *value;
		pct_rc		rc = PCT_OK;

		if (lexer_next(&lx) == TOK_EOF)
			break;
		if (lx.type == TOK_EOL)
			continue;
		if (lx.type != TOK_ID && lx.type != TOK_QUALIFIED_ID)
			return syntax_error(path, &lx);
		name_start = lx.start;
		name_len = lx.end - lx.start;
		line = lx.tok_line;
		line_start = lx.line_start;

		if (lexer_next(&lx) == TOK_EQUALS)
			lexer_next(&lx);
		if (lx.type != TOK_ID && lx.type != TOK_STRING &&
			lx.type != TOK_INTEGER && lx.type != TOK_REAL &&
			lx.type != TOK_UNQUOTED_STRING)
			return syntax_error(path, &lx);
		value_type = lx.type;
		value_start = lx.start;
		value_end = lx.end;

		if (lexer_next(&lx) != TOK_EOL && lx.type != TOK_EOF)
			return syntax_error(path, &lx);

		/* Decode the value only when it is needed. */
		if (name_equal(lx.buf + name_start, name_len, "include_dir") ||
			name_equal(lx.buf + name_start, name_len, "include_if_exists") ||
			name_equal(lx.buf + name_start, name_len, "include") ||
			name_equal(lx.buf + name_start, name_len, st->name))
		{
			if (value_type == TOK_STRING)
				value = deescape_string(lx.buf + value_start,
										value_end - value_start);
			else
				value = strndup(lx.buf + value_start,
								value_end - value_start);
			if (value == NULL)
				return nomem();
		}
		else
			continue;

		if (name_equal(lx.buf + name_start, name_len, "include_dir"))
			rc = parse_dir(st, value, path, line, depth + 1);
		else if (name_equal(lx.buf + name_start, name_len,
							"include_if_exists"))
			rc = parse_file(st, value, false, path, line, depth + 1);
		else if (name_equal(lx.buf + name_start, name_len, "include"))
			rc = parse_file(st, value, true, path, line, depth + 1);
		else
		{
			conf_item	item;

			item.file = index;
			item.line = line;
			item.line_start = line_start;
			item.line_end = lx.start;	/* the '\n', or the end */
			item.value_end = value_end;
			item.value = value;
			if ((rc = add_item(st, &item)) == PCT_OK)
				continue;
		}
		free(value);
		if (rc != PCT_OK)
			return rc;
		/* The included file may have moved the arrays; the data did not. */
	}
	return PCT_OK;
}

/*
 * Read one configuration file, as the server's ParseConfigFile():
 * config_file is relative to the directory of calling_file (or, at the
 * top, absolute).  strict: the file must exist.
 */
static pct_rc
parse_file(conf_state *st, const char *config_file, bool strict,
		   const char *calling_file, int calling_line, int depth)
{
	char		detail[PCT_MAXPATH + 64];
	char	   *abs_path;
	int			index,
				open_errno;
	pct_rc		rc;

	where_detail(detail, sizeof(detail), calling_file, calling_line);
	if (is_blank_name(config_file))
		return pct_fail(PCT_ERR_FORMAT, detail[0] ? detail : NULL, NULL,
						"empty configuration file name: \"%s\"", config_file);
	if (depth > CONF_MAX_DEPTH)
		return pct_fail(PCT_ERR_FORMAT, detail[0] ? detail : NULL, NULL,
						"could not open configuration file \"%s\": maximum nesting depth exceeded",
						config_file);
	abs_path = absolute_location(config_file, calling_file, "/");
	if (abs_path == NULL)
		return nomem();
	if (calling_file != NULL && strcmp(abs_path, calling_file) == 0)
	{
		free(abs_path);
		return pct_fail(PCT_ERR_FORMAT, detail[0] ? detail : NULL, NULL,
						"configuration file recursion in \"%s\"",
						calling_file);
	}

	rc = load_file(st, abs_path, &index, &open_errno);
	if (rc == PCT_OK && open_errno != 0)
	{
		/* The server skips an optional file it cannot open, whatever the
		 * reason. */
		if (strict)
			rc = pct_fail(open_errno == ENOMEM ? PCT_ERR_NOMEM : PCT_ERR_SYS,
						  detail[0] ? detail : NULL, NULL,
						  "could not open configuration file \"%s\": %s",
						  abs_path, strerror(open_errno));
		free(abs_path);
		return rc;
	}
	free(abs_path);
	if (rc != PCT_OK)
		return rc;
	return parse_lines(st, index, depth);
}

/* Read the whole configuration of pgdata, collecting the lines that set
 * name. */
static pct_rc
read_config(const char *pgdata, const char *name, conf_state *st)
{
	char	   *dir = NULL,
			   *path = NULL;
	pct_rc		rc;

	memset(st, 0, sizeof(*st));
	st->name = name;
	if ((rc = absolute_pgdata(pgdata, &dir)) != PCT_OK)
		return rc;
	path = absolute_location(CONF_MAIN_FILE, NULL, dir);
	if (path == NULL)
		rc = nomem();
	if (rc == PCT_OK)
		rc = parse_file(st, path, true, NULL, 0, 0);
	free(path);
	if (rc == PCT_OK)
	{
		path = absolute_location(CONF_AUTO_FILE, NULL, dir);
		if (path == NULL)
			rc = nomem();
		if (rc == PCT_OK)
			rc = parse_file(st, path, false, NULL, 0, 0);
		free(path);
	}
	free(dir);
	if (rc != PCT_OK)
		conf_state_free(st);
	return rc;
}

/* A name the server's reader accepts as a setting: an identifier or one
 * qualified identifier, not a directive. */
static pct_rc
check_name(const char *name)
{
	lexer		lx;

	if (name == NULL || name[0] == '\0')
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"configuration parameter name is empty");
	lexer_init(&lx, name, strlen(name));
	lexer_next(&lx);
	if ((lx.type != TOK_ID && lx.type != TOK_QUALIFIED_ID) ||
		lx.end != lx.len)
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"invalid configuration parameter name \"%s\"", name);
	if (name_equal(name, lx.len, "include") ||
		name_equal(name, lx.len, "include_if_exists") ||
		name_equal(name, lx.len, "include_dir"))
		return pct_fail(PCT_ERR_ARG, NULL, NULL,
						"\"%s\" is a directive, not a configuration parameter",
						name);
	return PCT_OK;
}

/* ---- public functions ---- */

pct_rc
pct_config_get(const char *pgdata, const char *name, char **value,
			   char **file, int *line)
{
	conf_state	st;
	pct_rc		rc;

	*value = NULL;
	if (file != NULL)
		*file = NULL;
	if (line != NULL)
		*line = 0;
	if (pgdata == NULL || pgdata[0] == '\0')
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "no data directory specified");
	if ((rc = check_name(name)) != PCT_OK)
		return rc;
	if ((rc = read_config(pgdata, name, &st)) != PCT_OK)
		return rc;
	if (st.nitems > 0)
	{
		conf_item  *it = &st.items[st.nitems - 1];

		if (file != NULL)
		{
			*file = strdup(st.files[it->file].path);
			if (*file == NULL)
				rc = nomem();
		}
		if (rc == PCT_OK)
		{
			*value = it->value;
			it->value = NULL;	/* handed to the caller */
			if (line != NULL)
				*line = it->line;
		}
	}
	conf_state_free(&st);
	return rc;
}

char *
pct_config_quote(const char *value)
{
	size_t		n = 3;
	const char *p;
	char	   *out,
			   *o;

	for (p = value; *p != '\0'; p++)
		n += (*p == '\'' || *p == '\\' || *p == '\n' || *p == '\r') ? 2 : 1;
	out = malloc(n);
	if (out == NULL)
		return NULL;
	o = out;
	*o++ = '\'';
	for (p = value; *p != '\0'; p++)
	{
		switch (*p)
		{
			case '\'':
				*o++ = '\'';
				*o++ = '\'';
				break;
			case '\\':
				*o++ = '\\';
				*o++ = '\\';
				break;
			case '\n':
				/* A line break would end the line: write the escape. */
				*o++ = '\\';
				*o++ = 'n';
				break;
			case '\r':
				*o++ = '\\';
				*o++ = 'r';
				break;
			default:
				*o++ = *p;
				break;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* Rewrite a configuration file durably with new contents, keeping its
 * mode; the file a symbolic link points to is rewritten, not the link. */
static pct_rc
rewrite_file(const conf_file *f, const char *data, size_t len)
{
	char	   *target;
	struct stat sb;
	pct_rc		rc;

	if (len == f->len && memcmp(data, f->data, len) == 0)
		return PCT_OK;			/* nothing changes */
	target = realpath(f->path, NULL);
	if (target == NULL)
		return pct_syserr("could not resolve path \"%s\"", f->path);
	if (stat(target, &sb) != 0)
		rc = pct_syserr("could not stat file \"%s\"", target);
	else
		rc = pct_durable_write(target, data, len, sb.st_mode & 07777);
	free(target);
	if (rc == PCT_OK)
		pct_durable_step("rewrite configuration file");
	return rc;
}

/* The line "name = 'value'" (no newline) appended to sb. */
static pct_rc
append_setting(strbuf *sb, const char *name, const char *value)
{
	char	   *quoted = pct_config_quote(value);
	pct_rc		rc;

	if (quoted == NULL)
		return nomem();
	rc = sb_append(sb, name, strlen(name));
	if (rc == PCT_OK)
		rc = sb_append(sb, " = ", 3);
	if (rc == PCT_OK)
		rc = sb_append(sb, quoted, strlen(quoted));
	free(quoted);
	return rc;
}

/* Replace the winning line, or append to postgresql.conf. */
static pct_rc
set_value(const conf_state *st, const char *name, const char *value)
{
	strbuf		sb = {0};
	const conf_file *f;
	pct_rc		rc;

	if (st->nitems > 0)
	{
		const conf_item *it = &st->items[st->nitems - 1];

		f = &st->files[it->file];
		/* Keep what followed the value: blanks, a comment, a CR. */
		rc = sb_append(&sb, f->data, it->line_start);
		if (rc == PCT_OK)
			rc = append_setting(&sb, name, value);
		if (rc == PCT_OK)
			rc = sb_append(&sb, f->data + it->value_end,
						   f->len - it->value_end);
	}
	else
	{
		if (st->nfiles == 0)	/* cannot be: postgresql.conf was read */
			return pct_fail(PCT_ERR_STATE, NULL, NULL,
							"configuration file \"%s\" was not read",
							CONF_MAIN_FILE);
		f = &st->files[0];		/* postgresql.conf, read first */
		rc = sb_append(&sb, f->data, f->len);
		if (rc == PCT_OK && f->len > 0 && f->data[f->len - 1] != '\n')
			rc = sb_append(&sb, "\n", 1);
		if (rc == PCT_OK)
			rc = append_setting(&sb, name, value);
		if (rc == PCT_OK)
			rc = sb_append(&sb, "\n", 1);
	}
	if (rc == PCT_OK)
		rc = rewrite_file(f, sb.data, sb.len);
	free(sb.data);
	return rc;
}

static int
compare_offsets(const void *a, const void *b)
{
	size_t		x = *(const size_t *) a;
	size_t		y = *(const size_t *) b;

	return x < y ? -1 : x > y;
}

/* Remove every line that sets the name, in every file. */
static pct_rc
remove_value(const conf_state *st)
{
	size_t	   *starts;
	pct_rc		rc = PCT_OK;
	int			fi;

	if (st->nitems == 0)
		return PCT_OK;
	starts = malloc((size_t) st->nitems * sizeof(*starts));
	if (starts == NULL)
		return nomem();
	for (fi = 0; rc == PCT_OK && fi < st->nfiles; fi++)
	{
		const conf_file *f = &st->files[fi];
		strbuf		sb = {0};
		size_t		n = 0,
					at = 0,
					k;
		int			i;

		for (i = 0; i < st->nitems; i++)
			if (st->items[i].file == fi)
				starts[n++] = st->items[i].line_start;
		if (n == 0)
			continue;
		/* A file included twice lists its lines twice. */
		qsort(starts, n, sizeof(*starts), compare_offsets);
		for (k = 0; rc == PCT_OK && k < n; k++)
		{
			size_t		end;

			if (k > 0 && starts[k] == starts[k - 1])
				continue;
			rc = sb_append(&sb, f->data + at, starts[k] - at);
			end = starts[k];
			while (end < f->len && f->data[end] != '\n')
				end++;
			at = end < f->len ? end + 1 : end;
		}
		if (rc == PCT_OK)
			rc = sb_append(&sb, f->data + at, f->len - at);
		if (rc == PCT_OK)
			rc = rewrite_file(f, sb.data, sb.len);
		free(sb.data);
	}
	free(starts);
	return rc;
}

pct_rc
pct_config_set(const char *pgdata, const char *name, const char *value)
{
	conf_state	st;
	pct_rc		rc;

	if (pgdata == NULL || pgdata[0] == '\0')
		return pct_fail(PCT_ERR_ARG, NULL, NULL, "no data directory specified");
	if ((rc = check_name(name)) != PCT_OK)
		return rc;
	/* Every file is read and checked before the first write. */
	if ((rc = read_config(pgdata, name, &st)) != PCT_OK)
		return rc;
	if (value != NULL)
		rc = set_value(&st, name, value);
	else
		rc = remove_value(&st);
	conf_state_free(&st);
	return rc;
}
