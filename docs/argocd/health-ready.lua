-- Argo CD health of a horolog Task or Calendar (horolog.dev/v1alpha1): its Ready condition.
-- Ready=False means a person must act (InvalidTemplate, InvalidCalendar, CalendarCycle,
-- CalendarNotFound, ...).
local hs = { status = "Progressing", message = "Waiting for the operator" }
local status = obj.status
if status == nil or status.conditions == nil then return hs end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.message = "Waiting for the operator to see generation " .. generation
  return hs
end
for _, c in ipairs(status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
      hs.message = c.message or ""
    elseif c.status == "False" then
      hs.status = "Degraded"
      hs.message = c.reason .. ": " .. (c.message or "")
    end
  end
end
return hs
