#include "testlib.h"
int main(void) { TEST_DONE(); }
