// What the shim's files share.
#pragma once
#include <cstdint>
#include <exception>
#include <functional>

// Keeps the message of `e` for byol_last_error: libtorch's own errors without
// the C++ stack trace they carry.
void remember(const std::exception& e);
