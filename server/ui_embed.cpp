// ui_embed.cpp — the web page (server/ui/index.html) linked into the binary with the assembler's .incbin, so
// `sd serve` needs no file next to it. The path is relative to the repository root, where make runs the
// compiler; the Makefile names the page as a prerequisite of this object (-MMD cannot see an .incbin).
#include <string>

#include "server/api.h"

#if defined(__APPLE__)
#define SD_UI_SYMBOL(name) "_" #name
#define SD_UI_SECTION ".const_data\n"
#define SD_UI_SECTION_END ".text\n"
#else
#define SD_UI_SYMBOL(name) #name
#define SD_UI_SECTION ".pushsection .rodata\n"
#define SD_UI_SECTION_END ".popsection\n"
#endif

__asm__(SD_UI_SECTION ".balign 16\n"
        ".globl " SD_UI_SYMBOL(sd_ui_page_start) "\n" SD_UI_SYMBOL(sd_ui_page_start) ":\n"
        ".incbin \"server/ui/index.html\"\n"
        ".globl " SD_UI_SYMBOL(sd_ui_page_end) "\n" SD_UI_SYMBOL(sd_ui_page_end) ":\n"
        SD_UI_SECTION_END);

extern "C" const char sd_ui_page_start[], sd_ui_page_end[];

namespace sd::serve {

std::string ui_page() { return std::string(sd_ui_page_start, sd_ui_page_end); }

}  // namespace sd::serve
