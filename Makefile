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

.PHONY: all deps build test install clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_SAN)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: deps
	@$(MAKE) --no-print-directory build
	@python3 scripts/run_tests.py $(BUILD)

install: build
	meson install -C $(BUILD)

clean:
	rm -rf build build-*
