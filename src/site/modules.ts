/**
 * @module The service modules every site runs. Add a service here; the site registers them in the
 * order their `provides`/`requires` declare (services/common/module.ts, orderModules).
 */
import type { ServiceModule } from '../services/common/module.ts';
import { identityModule } from '../services/identity/index.ts';
import { networkModule } from '../services/network/index.ts';
import { volumeModule } from '../services/volume/index.ts';
import { imageModule } from '../services/image/index.ts';
import { computeModule } from '../services/compute/index.ts';

export function siteModules(): ServiceModule[] {
  const modules: ServiceModule[] = [];
  const catalog = () => modules.flatMap((m) => m.catalog);
  modules.push(identityModule(catalog));
  modules.push(networkModule());
  modules.push(volumeModule());
  modules.push(imageModule());
  modules.push(computeModule());
  return modules;
}
