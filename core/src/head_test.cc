#include "mpath/core/head.h"

#include <gtest/gtest.h>

TEST(Placeholder, Builds) { SUCCEED(); }
