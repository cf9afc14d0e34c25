// serve.h — the `sd serve` command (server/serve.cpp): argv is {"serve", flags...}.
#pragma once

namespace sd::serve {

// Runs the server until SIGTERM/SIGINT; returns the process exit status (0 after a clean stop, 2 for a
// command-line mistake, 1 for a failure to start).
int serve_main(int argc, const char* const* argv, const char* version);

}  // namespace sd::serve
