# gr-modrec: the commands of README.md.
#   make demo     set up the runtime (no torch), build + install into .venv, run the demo
#   make test     set up runtime + training, build + install, run pytest and ctest
#   make install  set up the runtime, build + install the module into .venv
#   make bench    benchmarks (figures, no pass/fail)

VENV     ?= .venv
PY       := $(VENV)/bin/python
BUILD    ?= build
JOBS     ?= $(shell nproc)
SITE_DIR  = $(shell $(PY) -c "import os, sysconfig; print(os.path.relpath(sysconfig.get_path('platlib'), sysconfig.get_path('data')))")
# The venv's bin/ first: the module's programs are installed there, and GNU Radio's tools
# (grcc) then run with the venv's packages.
RUN      := env PATH="$(abspath $(VENV))/bin:$$PATH" GRC_BLOCKS_PATH="$(abspath $(VENV))/share/gnuradio/grc/blocks"

.PHONY: all setup-runtime setup-training build install demo test bench clean

all: install

setup-runtime:
	bash scripts/setup.sh runtime

setup-training:
	bash scripts/setup.sh training

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_INSTALL_PREFIX="$(abspath $(VENV))" \
	  -DGR_PYTHON_DIR="$(SITE_DIR)" \
	  -DMODREC_PYTHON="$(abspath $(PY))" \
	  -DENABLE_DOXYGEN=OFF

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

install: setup-runtime
	$(MAKE) build
	cmake --install $(BUILD) > $(BUILD)/install.log

demo: install
	$(RUN) $(PY) apps/modrec_demo --seconds 20

test: setup-training
	$(MAKE) build
	cmake --install $(BUILD) > $(BUILD)/install.log
	$(RUN) MODREC_EXPECT_INSTALLED=1 $(PY) -m pytest tests
	cd $(BUILD) && $(RUN) ctest --output-on-failure

bench: setup-training
	$(MAKE) build
	cmake --install $(BUILD) > $(BUILD)/install.log
	$(RUN) $(PY) apps/modrec_bench

clean:
	rm -rf $(BUILD)
