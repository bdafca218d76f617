# tests/preload/preload.mk: the LD_PRELOAD library that lets the stock
# PostgreSQL 15 server run on a cluster encrypted by pg_encrypt_cluster
# (test infrastructure: built for the TAP tests, never installed).  See
# tests/preload/README.md.  Included by the top Makefile, whose ALL_CFLAGS,
# LIB_SRC and PG_INCLUDE_SERVER it uses.
#
#   make preload         build $(PRELOAD_SO)
#   make clean-preload   remove it and its objects (also part of `make clean`)
#
# libpgcrypttools.a is built from position-dependent objects, so the
# library's sources are compiled again with -fPIC (and hidden visibility:
# the .so exports only the calls it intercepts) into $(PRELOAD_PIC)/ and
# archived there; the linker takes the members it needs.

PRELOAD_DIR	 = tests/preload
PRELOAD_SO	 = $(O)$(PRELOAD_DIR)/pct_preload.so
PRELOAD_PIC	 = $(O)$(PRELOAD_DIR)/pic
PRELOAD_PIC_OBJ = $(LIB_SRC:lib/%.c=$(PRELOAD_PIC)/%.o)
PRELOAD_PIC_LIB = $(PRELOAD_PIC)/libpgcrypttools_pic.a
PRELOAD_HDR	 = $(PRELOAD_DIR)/pct_preload.h $(PRELOAD_DIR)/pct_pgserver.h \
			   pg_cryptokeys.h lib/pct_internal.h
PRELOAD_OBJ	 = $(PRELOAD_PIC)/pct_preload.o $(PRELOAD_PIC)/pct_keys.o \
			   $(PRELOAD_PIC)/pct_pgserver.o
PRELOAD_CFLAGS = $(ALL_CFLAGS) -fPIC -fvisibility=hidden
PRELOAD_LIBS = -Wl,--as-needed -lcrypto -lpthread -ldl

.PHONY: preload clean-preload

preload: $(PRELOAD_SO)

$(PRELOAD_PIC)/%.o: lib/%.c pg_cryptokeys.h lib/pct_internal.h
	@mkdir -p $(dir $@)
	$(CC) $(PRELOAD_CFLAGS) -c -o $@ $<

# As in the top Makefile: PostgreSQL's checksum code needs its headers.
$(PRELOAD_PIC)/checksum.o: lib/checksum.c pg_cryptokeys.h lib/pct_internal.h
	@mkdir -p $(dir $@)
	$(CC) $(PRELOAD_CFLAGS) -O3 -isystem $(PG_INCLUDE_SERVER) \
		-isystem $(PG_INCLUDE)/internal -c -o $@ $<

$(PRELOAD_PIC_LIB): $(PRELOAD_PIC_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The interposer unit defines read(), open()...: _FORTIFY_SOURCE's inline
# wrappers of those would clash with the definitions.
$(PRELOAD_PIC)/pct_preload.o: $(PRELOAD_DIR)/pct_preload.c $(PRELOAD_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(PRELOAD_CFLAGS) -U_FORTIFY_SOURCE -c -o $@ $<

$(PRELOAD_PIC)/pct_keys.o: $(PRELOAD_DIR)/pct_keys.c $(PRELOAD_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(PRELOAD_CFLAGS) -c -o $@ $<

# The only unit that sees the server headers (types and layout facts).
$(PRELOAD_PIC)/pct_pgserver.o: $(PRELOAD_DIR)/pct_pgserver.c $(PRELOAD_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(PRELOAD_CFLAGS) -isystem $(PG_INCLUDE_SERVER) -c -o $@ $<

# -z defs: every symbol resolved at link time (the server's are reached
# with dlsym() only, so the library loads into any program).
$(PRELOAD_SO): $(PRELOAD_OBJ) $(PRELOAD_PIC_LIB)
	$(CC) -shared -o $@ $(PRELOAD_OBJ) $(PRELOAD_PIC_LIB) $(LDFLAGS) \
		-Wl,-z,defs -Wl,-z,now $(PRELOAD_LIBS)

clean-preload:
	rm -rf $(PRELOAD_PIC) $(PRELOAD_SO)

clean: clean-preload
