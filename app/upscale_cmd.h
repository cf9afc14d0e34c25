// upscale_cmd.h — the `sd upscale` command (argv[0] is "upscale"): its own options, one-sentence errors, exit 2 for
// usage, 1 for other failures, 130 when interrupted.
#pragma once

namespace sd {
int upscale_main(int argc, char** argv);
}
