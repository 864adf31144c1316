#include "common/common.h"
int main(void) { return 0; }
