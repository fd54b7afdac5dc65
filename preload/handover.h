// SPDX-License-Identifier: Apache-2.0
// Files being written that live on across exec: a shell's `cmd > file`
// opens the file, then execs cmd, which writes it. exec keeps the pid and
// every fd without FD_CLOEXEC, so the staged files this process owns that
// keep such an fd are handed to the new program image (their paths and fds
// in OBJCACHE_STAGED), which resumes them (Vfs::resume_write) and commits
// them when it closes them or exits. Must not run in a vfork child (its
// parent owns the staged files and commits them itself).
#pragma once

#include <string>

namespace objcache::preload::handover {

// The environment variable that carries them: one line per fd,
// "FD GROUP PATH" (fds of one GROUP share an open file description).
inline constexpr const char* kVar = "OBJCACHE_STAGED";

// Before exec: commits every staged file this process owns of which no fd
// survives the exec; syncs the others (their bytes so far are in the
// bucket, and no upload is left in flight) and returns their lines ("":
// none).
std::string prepare_exec() noexcept;

// In a new program image (the library's constructor): resumes what the old
// one handed over, and takes the variable out of the environment.
void resume() noexcept;

}  // namespace objcache::preload::handover
