-- Argo CD health of a horolog Schedule (horolog.dev/v1alpha1).
-- Ready=False means a person must act (InvalidTrigger, TaskNotFound, TooManyFailures, ...);
-- a paused Schedule is Suspended; a finished one is Healthy.
local hs = { status = "Progressing", message = "Waiting for the operator" }
local function condition(status, type_)
  if status == nil or status.conditions == nil then return nil end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then return c end
  end
  return nil
end
local status = obj.status
if status == nil then return hs end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.message = "Waiting for the operator to see generation " .. generation
  return hs
end
local ready = condition(status, "Ready")
if ready == nil then return hs end
if ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
  return hs
end
local paused = condition(status, "Paused")
if paused ~= nil and paused.status == "True" then
  hs.status = "Suspended"
  hs.message = paused.reason .. ": " .. (paused.message or "")
  return hs
end
local finished = condition(status, "Finished")
if finished ~= nil and finished.status == "True" then
  hs.status = "Healthy"
  hs.message = "Finished: " .. (finished.message or "")
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
end
return hs
