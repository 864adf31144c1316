/* llvm_smoke.c — proves the LLVM C API links and works on this machine:
 * builds `int add(int a, int b)`, verifies the module and emits an object
 * file for the host into memory. */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = LLVMModuleCreateWithNameInContext("smoke", ctx);
  LLVMTypeRef i32 = LLVMInt32TypeInContext(ctx);
  LLVMTypeRef params[2] = {i32, i32};
  LLVMValueRef fn = LLVMAddFunction(m, "add", LLVMFunctionType(i32, params, 2, 0));
  LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
  LLVMBuildRet(b, LLVMBuildAdd(b, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), "s"));
  char *err = NULL;
  if (LLVMVerifyModule(m, LLVMReturnStatusAction, &err)) {
    fprintf(stderr, "verify: %s\n", err);
    return 1;
  }
  LLVMDisposeMessage(err);
  char *triple = LLVMGetDefaultTargetTriple();
  LLVMTargetRef t;
  if (LLVMGetTargetFromTriple(triple, &t, &err)) {
    fprintf(stderr, "target: %s\n", err);
    return 1;
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t, triple, "generic", "",
                                                    LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  LLVMMemoryBufferRef obj;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &err, &obj)) {
    fprintf(stderr, "emit: %s\n", err);
    return 1;
  }
  size_t n = LLVMGetBufferSize(obj);
  const unsigned char *p = (const unsigned char *)LLVMGetBufferStart(obj);
  int ok = n > 64 && p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F';
  printf("llvm smoke: %s object of %zu bytes for %s\n", ok ? "ELF" : "bad", n, triple);
  LLVMDisposeMemoryBuffer(obj);
  LLVMDisposeTargetMachine(tm);
  LLVMDisposeMessage(triple);
  LLVMDisposeBuilder(b);
  LLVMDisposeModule(m);
  LLVMContextDispose(ctx);
  return ok ? 0 : 1;
}
