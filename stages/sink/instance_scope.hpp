// The sink kit's names for the engine's InstanceScope and StrandTimer (stages/engine/instance_scope.hpp).
#pragma once

#include "stages/engine/instance_scope.hpp"

namespace etld::sink {

using etld::InstanceScope;
using etld::StrandTimer;

}  // namespace etld::sink
