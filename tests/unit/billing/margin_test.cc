#include "billing/margin.h"
