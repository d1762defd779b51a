// aisidd's process edge: options, zones, sockets, threads, signals.
#pragma once

namespace aisid::resolver {

struct AuthorityHook;

/// Runs aisidd; returns the exit code (SPEC §4). `hook` is the authority side,
/// or nullptr.
int run_daemon(int argc, char **argv, AuthorityHook *hook = nullptr);

} // namespace aisid::resolver
