// Weights used where they lie in a mapped file: a parameter's storage becomes the file's own bytes, so loading it
// costs no copy and no fresh memory (its pages are the page cache's, read in as the model first touches them).
//   if (!io::use_mapped_bytes(param, mapping, mapping->data_at(offset), nbytes)) copy_the_usual_way();
// The mapping is private (copy-on-write): training or editing such a weight changes this process's pages, never the
// file. The mapping stays alive while any storage points into it, and goes with the last of them.
#pragma once
#include <cstddef>
#include <memory>

#include "loom/core/tensor.h"
#include "loom/io/mapped_file.h"

namespace loom::io {

// Makes param's storage the nbytes at p (inside file's mapping) when that is exact: a contiguous host tensor that
// owns all of its storage, of exactly nbytes, and p on a 64-byte boundary (the alignment every Storage has). The block
// the tensor held goes back to its allocator. False, with nothing changed, when any of that does not hold: the
// caller copies instead. Never release() a range used this way (MappedFile::release would drop written pages).
bool use_mapped_bytes(const Tensor& param, std::shared_ptr<const MappedFile> file, char* p, size_t nbytes);

// Whether t's storage is bytes of a mapped file (use_mapped_bytes).
bool uses_mapped_bytes(const Tensor& t);

}  // namespace loom::io
