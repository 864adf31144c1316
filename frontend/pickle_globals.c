/* pickle_globals.c — the allow-list of pickle globals.
 *
 * This file is the whole of what a pickle may name. GLOBAL module.name is
 * looked up here and becomes a tag the pickle VM (pickle.c) interprets
 * itself: one of the few callables nncc understands (torch._utils.
 * _rebuild_tensor_v2, collections.OrderedDict, torch.jit._pickle's list
 * builders, ...), a storage type (torch.FloatStorage → f32), a number that
 * a torch enum name stands for (torch.float32 → 6, torch.channels_last →
 * 2), or a class under one of the caller's class prefixes (the model's own
 * __torch__ classes, kept as objects with their state). Anything else is
 * refused by name and nothing is ever imported, called or executed: the
 * security of reading an untrusted archive rests on this list, so it is
 * kept small and in one place.
 */
#include "frontend.h"

#include <stdio.h>
#include <string.h>

static const struct {
  const char *module, *name;
  fe_pglobal g;
} known_globals[] = {
    {"torch._utils", "_rebuild_tensor", FE_PG_REBUILD_TENSOR},
    {"torch._utils", "_rebuild_tensor_v2", FE_PG_REBUILD_TENSOR_V2},
    {"torch._utils", "_rebuild_parameter", FE_PG_REBUILD_PARAMETER},
    {"torch._utils", "_rebuild_parameter_with_state", FE_PG_REBUILD_PARAMETER},
    {"collections", "OrderedDict", FE_PG_ORDERED_DICT},
    {"torch.jit._pickle", "build_intlist", FE_PG_BUILD_LIST},
    {"torch.jit._pickle", "build_doublelist", FE_PG_BUILD_LIST},
    {"torch.jit._pickle", "build_boollist", FE_PG_BUILD_LIST},
    {"torch.jit._pickle", "build_tensorlist", FE_PG_BUILD_LIST},
    {"torch.jit._pickle", "restore_type_tag", FE_PG_RESTORE_TYPE_TAG},
    {"torch.jit._pickle", "build_tensor_from_id", FE_PG_TENSOR_FROM_ID},
    {"torch", "device", FE_PG_DEVICE},
    {"torch", "Size", FE_PG_SIZE},
    {"builtins", "set", FE_PG_SET},
    {"builtins", "frozenset", FE_PG_SET},
    {"__builtin__", "set", FE_PG_SET},
    {"__builtin__", "frozenset", FE_PG_SET},
    {"_codecs", "encode", FE_PG_CODECS_ENCODE},
};

/* torch.<name> globals that stand for plain numbers: ScalarType (FORMATS §7),
 * MemoryFormat and Layout. */
static const struct {
  const char *name;
  int64_t value;
} torch_enums[] = {
    {"uint8", 0},
    {"int8", 1},
    {"int16", 2},
    {"short", 2},
    {"int32", 3},
    {"int", 3},
    {"int64", 4},
    {"long", 4},
    {"float16", 5},
    {"half", 5},
    {"float32", 6},
    {"float", 6},
    {"float64", 7},
    {"double", 7},
    {"complex32", 8},
    {"chalf", 8},
    {"complex64", 9},
    {"cfloat", 9},
    {"complex128", 10},
    {"cdouble", 10},
    {"bool", 11},
    {"qint8", 12},
    {"quint8", 13},
    {"qint32", 14},
    {"bfloat16", 15},
    {"contiguous_format", 0},
    {"preserve_format", 1},
    {"channels_last", 2},
    {"channels_last_3d", 3},
    {"strided", 0},
};

static bool is_class_module(const char *const *prefixes, const char *module) {
  for (const char *const *p = prefixes; p && *p; p++) {
    size_t n = strlen(*p);
    if (strncmp(module, *p, n) == 0) return true;
    /* "__main__." also admits the module "__main__" itself */
    if (n > 0 && (*p)[n - 1] == '.' && strlen(module) == n - 1 && strncmp(module, *p, n - 1) == 0)
      return true;
  }
  return false;
}

__attribute__((format(printf, 3, 4))) static fe_pglobal
refuse(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return FE_PG_REFUSED;
}

fe_pglobal fe_pickle_global(const char *module, const char *name, const char *const *prefixes,
                            nn_dtype *dt, int64_t *num, char *why, size_t whylen) {
  for (int i = 0; i < NN_ARRAY_LEN(known_globals); i++)
    if (!strcmp(module, known_globals[i].module) && !strcmp(name, known_globals[i].name))
      return known_globals[i].g;
  if (!strcmp(module, "torch._utils") && !strcmp(name, "_rebuild_qtensor"))
    return refuse(why, whylen, "quantized tensors are not supported yet");
  if ((!strcmp(module, "builtins") || !strcmp(module, "__builtin__")) && !strcmp(name, "complex"))
    return refuse(why, whylen, "complex values are not supported");
  if (!strcmp(module, "torch") || !strcmp(module, "torch.storage")) {
    size_t n = strlen(name);
    if (!strcmp(name, "UntypedStorage")) { /* raw bytes: numel counts bytes */
      *dt = NN_DT_U8;
      return FE_PG_STORAGE;
    }
    if (!strcmp(module, "torch") && n > 7 && !strcmp(name + n - 7, "Storage")) {
      if (!strncmp(name, "QInt", 4) || !strncmp(name, "QUInt", 5))
        return refuse(why, whylen, "quantized tensors are not supported yet (torch.%s)", name);
      if (!strncmp(name, "Complex", 7))
        return refuse(why, whylen, "complex storages are not supported (torch.%s)", name);
      char base[64];
      if (n - 7 < sizeof base) {
        memcpy(base, name, n - 7);
        base[n - 7] = 0;
        nn_dtype d = nn_dtype_from_storage_name(base);
        if (d != NN_DT_UNKNOWN) {
          *dt = d;
          return FE_PG_STORAGE;
        }
      }
    }
    if (!strcmp(module, "torch"))
      for (int i = 0; i < NN_ARRAY_LEN(torch_enums); i++)
        if (!strcmp(name, torch_enums[i].name)) {
          *num = torch_enums[i].value;
          return FE_PG_NUMBER;
        }
  }
  if (is_class_module(prefixes, module)) return FE_PG_CLASS;
  return refuse(why, whylen, "unknown global '%.200s.%.200s' (refusing to execute pickled code)",
                module, name);
}
