# SPDX-License-Identifier: Apache-2.0
# Thin wrappers over meson and ninja. `make test SANITIZE=address,undefined`
# (or thread) builds and tests in build-<sanitizer>/ instead of build/.
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD ?= build
MESON_SAN :=
else
BUILD ?= build-$(subst $(comma),-,$(SANITIZE))
MESON_SAN := -Db_sanitize=$(SANITIZE) -Db_lundef=false
endif
comma := ,

# TEST_ARGS go to meson test, e.g. TEST_ARGS="--suite concurrency".
TEST_ARGS ?=

.PHONY: all deps build test bench demo demo-checkpoint chaos fuzz install clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_SAN)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: deps
	@$(MAKE) --no-print-directory build
	@python3 scripts/run_tests.py $(BUILD) $(TEST_ARGS)

# Benchmarks are programs that print and write their report; they assert
# nothing about speed.
bench: deps
	@$(MAKE) --no-print-directory build
	@mkdir -p bench/results
	$(BUILD)/bench/bench_page_cache --runs 7 --out bench/results/page_cache.md
	@echo "wrote bench/results/page_cache.md and .json"
	/usr/bin/python3 bench/bench_shim.py --build $(BUILD) --runs 5 --out bench/results/shim.md
	@echo "wrote bench/results/shim.md and .json"
	/usr/bin/python3 bench/bench_cold_epoch.py --build $(BUILD) --runs 3 --out bench/results/cold_epoch.md
	@echo "wrote bench/results/cold_epoch.md and .json"
	/usr/bin/python3 bench/bench_boto3.py --build $(BUILD) --runs 3 --out bench/results/boto3.md
	@echo "wrote bench/results/boto3.md and .json"
	/usr/bin/python3 bench/bench_dataloader.py --build $(BUILD) --runs 5 --out bench/results/dataloader.md
	@echo "wrote bench/results/dataloader.md and .json"
	/usr/bin/python3 bench/bench_peers.py --build $(BUILD) --runs 3 --out bench/results/peers.md --plots bench/results
	@echo "wrote bench/results/peers.md, .json and bench/results/peers_*.png"
	/usr/bin/python3 bench/bench_checkpoint.py --build $(BUILD) --runs 3 --out bench/results/checkpoint.md
	@echo "wrote bench/results/checkpoint.md and .json"
	/usr/bin/python3 bench/bench_api.py --build $(BUILD) --runs 3 --out bench/results/api.md
	@echo "wrote bench/results/api.md and .json"
	/usr/bin/python3 bench/bench_startup.py --build $(BUILD) --runs 1000 --out bench/results/startup.md
	@echo "wrote bench/results/startup.md and .json"
	/usr/bin/python3 bench/bench_scale.py --build $(BUILD) --runs 5 --out bench/results/scale.md --plot bench/results/scale_growth.png
	@echo "wrote bench/results/scale.md, .json and bench/results/scale_growth.png"
	/usr/bin/python3 bench/report.py
	@echo "wrote bench/REPORT.md"

# The long chaos run (1 GiB epoch through injected faults, 100 kills, ...):
# writes bench/results/chaos.md and .json. make test runs its short form.
chaos: deps
	@$(MAKE) --no-print-directory build
	@mkdir -p bench/results
	/usr/bin/python3 tests/chaos/run_chaos.py --long --shim $(BUILD)/preload/libobjcache_preload.so \
	  --cachectl $(BUILD)/tools/cachectl --out bench/results/chaos.md

# The libFuzzer targets (tests/fuzz) built with clang and ASan+UBSan in
# build-fuzz/, each run for FUZZ_SECONDS over its seed corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	@test -f build-fuzz/build.ninja || CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dtests=false \
	  -Db_sanitize=address,undefined -Db_lundef=false
	@ninja -C build-fuzz
	@python3 scripts/run_fuzz.py build-fuzz $(FUZZ_SECONDS)

# The main job end to end on this machine (README's quick start).
demo: deps
	@$(MAKE) --no-print-directory build
	/usr/bin/python3 demo/run_demo.py --build $(BUILD)

# A training loop that checkpoints to the bucket through a writable mount
# every epoch, is killed mid-checkpoint, and resumes (README, "Checkpoints").
demo-checkpoint: deps
	@$(MAKE) --no-print-directory build
	/usr/bin/python3 demo/checkpoint_loop.py --build $(BUILD)

install: build
	meson install -C $(BUILD)

clean:
	rm -rf build build-*
