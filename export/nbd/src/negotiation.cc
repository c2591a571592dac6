#include "mpath/nbd/negotiation.h"
