#include "mpath/nbd/server.h"
