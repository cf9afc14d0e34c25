// taesd_embed.cpp — the SD1 TAESD and the TAESDXL weight files, linked into the binary with the assembler's .incbin so
// previews and the fast decoder need no file next to the executable (2.4 MB each, BF16).
//
// The paths are relative to the repository root, where make runs the compiler; the Makefile names both files
// as prerequisites of this object, since the compiler's dependency files (-MMD) cannot see an .incbin.
// Only this file holds assembler: ELF (Linux, x86-64 and ARM64) and Mach-O (macOS) spellings.
#include <cstddef>

#include "models/taesd.h"

#if defined(__APPLE__)
#define SD_ASM_SYMBOL(name) "_" #name
#define SD_ASM_SECTION ".const_data\n"
#define SD_ASM_SECTION_END ".text\n"
#else
#define SD_ASM_SYMBOL(name) #name
#define SD_ASM_SECTION ".pushsection .rodata\n"
#define SD_ASM_SECTION_END ".popsection\n"
#endif

// Defines name_start / name_end around the file's bytes, 64-byte aligned.
#define SD_INCBIN(name, path)                                                                 \
    __asm__(SD_ASM_SECTION ".balign 64\n"                                                     \
            ".globl " SD_ASM_SYMBOL(name##_start) "\n" SD_ASM_SYMBOL(name##_start) ":\n"      \
            ".incbin \"" path "\"\n"                                                          \
            ".globl " SD_ASM_SYMBOL(name##_end) "\n" SD_ASM_SYMBOL(name##_end) ":\n"          \
            SD_ASM_SECTION_END)

SD_INCBIN(sd_taesd_decoder, "models/taesd/taesd_decoder.safetensors");
SD_INCBIN(sd_taesd_encoder, "models/taesd/taesd_encoder.safetensors");
SD_INCBIN(sd_taesdxl_decoder, "models/taesd/taesdxl_decoder.safetensors");
SD_INCBIN(sd_taesdxl_encoder, "models/taesd/taesdxl_encoder.safetensors");

extern "C" const unsigned char sd_taesd_decoder_start[], sd_taesd_decoder_end[];
extern "C" const unsigned char sd_taesd_encoder_start[], sd_taesd_encoder_end[];
extern "C" const unsigned char sd_taesdxl_decoder_start[], sd_taesdxl_decoder_end[];
extern "C" const unsigned char sd_taesdxl_encoder_start[], sd_taesdxl_encoder_end[];

namespace sd {

EmbeddedFile taesd_embedded_decoder() {
    return {sd_taesd_decoder_start, (size_t)(sd_taesd_decoder_end - sd_taesd_decoder_start)};
}
EmbeddedFile taesd_embedded_encoder() {
    return {sd_taesd_encoder_start, (size_t)(sd_taesd_encoder_end - sd_taesd_encoder_start)};
}
EmbeddedFile taesdxl_embedded_decoder() {
    return {sd_taesdxl_decoder_start, (size_t)(sd_taesdxl_decoder_end - sd_taesdxl_decoder_start)};
}
EmbeddedFile taesdxl_embedded_encoder() {
    return {sd_taesdxl_encoder_start, (size_t)(sd_taesdxl_encoder_end - sd_taesdxl_encoder_start)};
}

}  // namespace sd
