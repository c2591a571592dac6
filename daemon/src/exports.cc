#include "mpath/daemon/exports.h"
