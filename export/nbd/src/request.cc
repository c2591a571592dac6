#include "mpath/nbd/request.h"
