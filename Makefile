# spikebridge build. `make` builds the libraries and the CLI; `make test` installs what is
# missing, builds and runs every test binary; `make sanitize` does the same under ASan+UBSan.
# Options: OMP=0 (no OpenMP), DEBUG=1 (-O0 -g), BUILD=dir (object directory).

CC      ?= gcc
MPI     ?= 0
ifeq ($(MPI),1)
# MPI build (docs/clusters.md): OpenMPI's mpicc, parallel HDF5's pkg-config, its own build dir
CC      := mpicc
BUILD   ?= build-mpi
HDF5PKG := hdf5-openmpi
EXTRA_CFLAGS += -DSB_MPI
else
HDF5PKG := hdf5-serial
endif
BUILD   ?= build
OMP     ?= 1
PKGS    := $(HDF5PKG) gsl jansson zlib plplot
TESTPKG := cmocka

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wno-format-nonliteral
CSTD    := -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
ifeq ($(DEBUG),1)
OPT     := -O0 -g
else
OPT     ?= -O2 -g
endif
ifeq ($(OMP),1)
OMPFLAG := -fopenmp
endif
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# GSL's own CBLAS (-lgslcblas) is replaced by OpenBLAS, as GSL's docs allow.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) openblas 2>/dev/null)
PKG_LIBS   := $(filter-out -lgslcblas,$(shell pkg-config --libs $(PKGS) 2>/dev/null)) \
              $(shell pkg-config --libs openblas 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs $(TESTPKG) 2>/dev/null)

CFLAGS  += $(CSTD) $(OPT) $(WARN) $(OMPFLAG) -fPIC -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(OMPFLAG) $(EXTRA_LDFLAGS)
LDLIBS  := $(PKG_LIBS) -lm

LIB_DIRS := sim neurons learning models/ann models/convert models/snn analysis
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HEADERS  := $(wildcard *.h $(addsuffix /*.h,$(LIB_DIRS)) cli/*.h tests/*.h)

BIN      := $(if $(filter build,$(BUILD)),spikebridge,$(BUILD)/spikebridge)

.PHONY: all deps test check-tests sanitize demo bench clean install-deps
all: $(BIN) $(BUILD)/libspikebridge.a $(BUILD)/libspikebridge.so

$(BUILD)/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libspikebridge.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libspikebridge.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN): $(CLI_OBJ) $(BUILD)/libspikebridge.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libspikebridge.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libspikebridge.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libspikebridge.a $(LDLIBS) $(TEST_LIBS)

install-deps deps:
	@scripts/install-deps

# The README's test command: installs what is missing (with OpenMPI, for the MPI tests),
# builds the serial and the MPI (build-mpi/) binaries, runs every test binary.
test:
	@scripts/install-deps --mpi
	@$(MAKE) --no-print-directory all tests-build
	@$(MAKE) --no-print-directory MPI=1 all
	@scripts/run-tests $(BUILD) $(BIN)

tests-build: $(TEST_BIN)

# Whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build dir.
sanitize: deps
	@$(MAKE) --no-print-directory BUILD=build-san OPT="-O1 -g" \
	    EXTRA_CFLAGS="$(SANFLAGS)" EXTRA_LDFLAGS="$(SANFLAGS)" all tests-build
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SB_SANITIZE=1 scripts/run-tests build-san build-san/spikebridge

# The main job (see README): installs what is missing, builds, runs.
demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo

bench: all
	@scripts/run-bench

clean:
	rm -rf build build-san spikebridge
