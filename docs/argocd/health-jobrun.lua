-- Argo CD health of a horolog JobRun (horolog.dev/v1alpha1): one run, by its phase.
-- Skipped (by the concurrency policy) and Cancelled (by a user, Replace or Terminate) are
-- decisions, not failures.
local hs = { status = "Progressing", message = "Waiting for the operator" }
local status = obj.status
if status == nil or status.phase == nil then return hs end
local phase = status.phase
local why = (status.reason or phase) .. ": " .. (status.message or "")
if phase == "Succeeded" or phase == "Skipped" or phase == "Cancelled" then
  hs.status = "Healthy"
elseif phase == "Failed" or phase == "Missed" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = phase .. " (" .. why .. ")"
return hs
