// Keeps the addon loadable wherever PyTorch's own wheels load (glibc >= 2.28,
// the libstdc++ of GCC 8). The addon is compiled by the build machine's newer
// g++, whose library headers make objects import three symbols that older
// glibc and libstdc++ lack. Each is defined here, hidden and weak, so that the
// linker binds every reference inside the addon (see scripts/toolchain.sh).
#include <new>
#include <sstream>

extern "C" {

// glibc 2.32's flag that libstdc++ reads to skip atomic reference counts in a
// single-threaded process; 0 keeps the atomics, which is always correct.
__attribute__((weak, visibility("hidden"))) char __libc_single_threaded = 0;

// The default constructor of std::ostringstream, exported by libstdc++ only
// since GCC 9: the same object as the constructor taking an open mode.
__attribute__((visibility("hidden"))) void byol_compat_ostringstream(void* self) {
  new (self) std::ostringstream(std::ios_base::out);
}

// GCC 11's helper for an array size that overflows in std::allocator.
__attribute__((visibility("hidden"), noreturn)) void byol_compat_throw_bad_array_new_length() {
  throw std::bad_array_new_length();
}
}

#define BYOL_ALIAS(symbol, target) \
  __asm__(".weak " symbol "\n.hidden " symbol "\n.set " symbol ", " target "\n")
BYOL_ALIAS("_ZNSt7__cxx1119basic_ostringstreamIcSt11char_traitsIcESaIcEEC1Ev", "byol_compat_ostringstream");
BYOL_ALIAS("_ZSt28__throw_bad_array_new_lengthv", "byol_compat_throw_bad_array_new_length");
