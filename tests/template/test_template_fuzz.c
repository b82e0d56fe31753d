#include "test_util.h"
int main(void) {
    return tp_test_exit();
}
